//! Plugin archives: reading a fetched `.tar.gz` (regular files and
//! directories only — a symlink, hard link or device refuses the whole
//! archive — no absolute paths, no `..`, at most the byte cap however well
//! it compresses) and writing the `.tar.gz` of `…/plugins/:name/download`.

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use std::io::Read;
use std::path::Component;

use super::source::StageError;

/// Files by relative path.
pub type Files = Vec<(String, Vec<u8>)>;

/// The files of `gz` (relative paths) and, when every file sits under one
/// top-level directory, that directory's name (stripped from the paths).
pub fn extract(gz: &[u8], max_bytes: u64) -> Result<(Files, Option<String>), StageError> {
    let invalid = |m: String| StageError::Invalid(m);
    let mut archive = tar::Archive::new(GzDecoder::new(gz));
    let mut files = Vec::new();
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("not a tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("unreadable archive: {e}")))?;
        let kind = entry.header().entry_type();
        let path = entry
            .path()
            .map_err(|e| invalid(format!("bad path in archive: {e}")))?
            .into_owned();
        let mut parts = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(p) => parts.push(
                    p.to_str()
                        .ok_or_else(|| invalid("a path in the archive is not UTF-8".into()))?
                        .to_string(),
                ),
                Component::CurDir => {}
                _ => {
                    return Err(invalid(format!(
                        "{} leaves the plugin (absolute or `..`)",
                        path.display()
                    )));
                }
            }
        }
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(invalid(format!(
                "{} is not a regular file (symlinks and links are refused)",
                path.display()
            )));
        }
        if parts.is_empty() {
            continue;
        }
        total += entry.header().size().unwrap_or(u64::MAX);
        if total > max_bytes {
            return Err(StageError::TooLarge(max_bytes));
        }
        let mut data = Vec::new();
        entry
            .by_ref()
            .take(max_bytes)
            .read_to_end(&mut data)
            .map_err(|e| invalid(format!("unreadable archive: {e}")))?;
        files.push((parts, data));
    }
    let root = files
        .first()
        .and_then(|(p, _)| (p.len() > 1).then(|| p[0].clone()));
    let shared = root
        .as_ref()
        .filter(|r| files.iter().all(|(p, _)| p.len() > 1 && &p[0] == *r));
    let strip = usize::from(shared.is_some());
    let root = shared.cloned();
    let mut out: Files = files
        .into_iter()
        .map(|(p, d)| (p[strip..].join("/"), d))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((out, root))
}

/// A `.tar.gz` of `files` (relative paths, regular files, mode 0644).
pub fn tar_gz(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append_data(&mut header, path, data.as_slice())?;
    }
    builder.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                header.set_size(0);
                header.set_link_name("/etc/passwd").unwrap();
                header.set_cksum();
                builder.append_data(&mut header, path, &[][..]).unwrap();
            } else {
                header.set_cksum();
                builder.append_data(&mut header, path, *data).unwrap();
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_single_top_directory_names_the_plugin_and_is_stripped() {
        let gz = archive(&[
            ("tools/plugin.yaml", tar::EntryType::Regular, b"version: 1"),
            ("tools/skills/a.md", tar::EntryType::Regular, b"# a"),
        ]);
        let (files, root) = extract(&gz, 1 << 20).unwrap();
        assert_eq!(root.as_deref(), Some("tools"));
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["plugin.yaml", "skills/a.md"]);
        // Round trip through the download format.
        let (back, root) = extract(&tar_gz(&files).unwrap(), 1 << 20).unwrap();
        assert_eq!(root, None, "files at the top: no directory to strip");
        assert_eq!(back, files);
    }

    #[test]
    fn links_escapes_and_bombs_are_refused() {
        let link = archive(&[("p/evil", tar::EntryType::Symlink, b"")]);
        assert!(matches!(
            extract(&link, 1 << 20),
            Err(StageError::Invalid(_))
        ));
        let big = archive(&[("p/big", tar::EntryType::Regular, &[0u8; 4096])]);
        assert_eq!(extract(&big, 1000), Err(StageError::TooLarge(1000)));
        assert!(matches!(
            extract(b"not gzip", 1000),
            Err(StageError::Invalid(_))
        ));
    }
}
