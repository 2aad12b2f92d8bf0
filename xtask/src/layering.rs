//! The layering rules of `molecule-server` (ARCHITECTURE.md, Invariants),
//! checked on the source text so that a violation fails `cargo xtask test`
//! instead of waiting for a reviewer:
//!
//! 1. no HTTP status code under `app/` (errors are domain variants; only
//!    `error.rs` turns them into status codes), except the A2A proxy
//!    (`app/a2a/`), which relays an agent's status codes;
//! 2. no store or provisioner access under `http/` (handlers call `App`);
//! 3. no `spawn` of detached work under `app/` or `http/` except the proxy
//!    (whose exchange outlives a dropped client): long-lived work belongs to
//!    `background/` (a task, or a task's `Jobs`). The listener and the
//!    server's start-up spawn the serving loops themselves.
//!
//! Comment lines are skipped, so a rule may be named in prose.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

struct Rule {
    name: &'static str,
    /// Applies to files under these directories of `src/` ...
    under: &'static [&'static str],
    /// ... except those under these.
    except: &'static [&'static str],
    /// A line breaks the rule when it contains one of these.
    needles: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        name: "HTTP status code under app/ (return a domain error; error.rs maps it)",
        under: &["app/"],
        except: &["app/a2a/"],
        needles: &["StatusCode", "axum::http", "axum::response"],
    },
    Rule {
        name: "store or provisioner access under http/ (call an App method)",
        under: &["http/"],
        except: &[],
        needles: &[".store.", ".store\n", "store()", ".provisioner"],
    },
    Rule {
        name: "detached spawn under app/ or http/ (use a background task or its Jobs)",
        under: &["app/", "http/"],
        except: &["app/a2a/"],
        needles: &["tokio::spawn", ".spawn(", "spawn_blocking"],
    },
];

/// One broken rule at one line.
#[derive(Debug, PartialEq)]
pub struct Violation {
    pub file: String,
    pub line: usize,
    pub rule: &'static str,
}

/// Check `molecule-server/src` under `root`; an error lists every violation.
pub fn check(root: &Path) -> Result<()> {
    let src = root.join("crates/molecule-server/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files)?;
    let mut found = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        found.extend(violations(&rel, &text));
    }
    if found.is_empty() {
        println!("layering: clean");
        return Ok(());
    }
    for v in &found {
        eprintln!(
            "crates/molecule-server/src/{}:{}: {}",
            v.file, v.line, v.rule
        );
    }
    bail!(
        "{} layering violation(s) (see ARCHITECTURE.md, Invariants)",
        found.len()
    );
}

/// The violations in one file, `rel` being its path under `src/`.
pub fn violations(rel: &str, text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in RULES {
        let applies = rule.under.iter().any(|u| rel.starts_with(u))
            && !rule.except.iter().any(|e| rel.starts_with(e));
        if !applies {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let line = format!("{line}\n");
            if rule.needles.iter().any(|n| line.contains(n)) {
                out.push(Violation {
                    file: rel.to_string(),
                    line: i + 1,
                    rule: rule.name,
                });
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_broken(rel: &str, text: &str) -> Vec<&'static str> {
        violations(rel, text).into_iter().map(|v| v.rule).collect()
    }

    #[test]
    fn each_rule_catches_its_pattern_where_it_applies() {
        let status = "        return Err((StatusCode::CONFLICT, body));\n";
        assert_eq!(rules_broken("app/workspaces/mod.rs", status).len(), 1);
        assert!(
            rules_broken("app/a2a/mod.rs", status).is_empty(),
            "the proxy"
        );
        assert!(rules_broken("error.rs", status).is_empty());

        let store = "    let ok = app.store.ping().await;\n";
        assert_eq!(rules_broken("http/admin.rs", store).len(), 1);
        assert_eq!(
            rules_broken("http/admin.rs", "    let p = app.provisioner()?;\n").len(),
            1
        );
        assert!(rules_broken("app/workspaces/registry.rs", store).is_empty());

        let spawn = "        tokio::spawn(async move { work().await });\n";
        assert_eq!(rules_broken("app/delegation.rs", spawn).len(), 1);
        assert_eq!(rules_broken("http/ws.rs", spawn).len(), 1);
        assert!(rules_broken("app/a2a/exchange.rs", spawn).is_empty());
        assert!(rules_broken("background/jobs.rs", spawn).is_empty());
        assert!(rules_broken("listener/mod.rs", spawn).is_empty());
    }

    #[test]
    fn comments_may_name_a_rule_and_lines_are_reported_one_based() {
        let text = "// StatusCode lives in error.rs\nfn f() {}\nlet s = StatusCode::OK;\n";
        let v = violations("app/x.rs", text);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].line, 3);
    }

    #[test]
    fn the_server_as_it_is_keeps_the_rules() {
        // The checkout the test runs in (cargo and nextest set it), not the
        // one the binary was built in: a shared target dir reuses builds.
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
        let root = Path::new(&dir).join("..");
        check(&root).expect("molecule-server keeps its layering");
    }
}
