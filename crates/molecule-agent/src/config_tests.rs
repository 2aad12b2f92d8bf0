//! Unit tests of `config.rs`: environment precedence over config.yaml over
//! defaults, and validation errors. Kept apart so config.rs stays readable.

use std::collections::HashMap;

use super::*;

/// A fresh empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("molecule-agent-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}

/// Loads with exactly `vars` set, MOLECULE_CONFIG_DIR pointing at `dir`.
fn load(dir: &Path, vars: &[(&str, &str)]) -> Result<(AgentConfig, ListenConfig), AgentError> {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert("MOLECULE_CONFIG_DIR".into(), dir.display().to_string());
    map.entry("HOSTNAME".into())
        .or_insert_with(|| "agent-host".into());
    from_env(|key| map.get(key).cloned())
}

#[test]
fn defaults_without_env_or_file() {
    let dir = temp_dir();
    let (config, listen) = load(&dir, &[]).expect("defaults are valid");
    assert_eq!(
        listen,
        ListenConfig {
            host: "0.0.0.0".into(),
            port: 8000
        }
    );
    assert_eq!(
        config.executor,
        ExecutorConfig::Echo {
            delay: Duration::ZERO
        }
    );
    assert_eq!(config.name, "molecule-agent");
    assert_eq!(config.hostname, "agent-host");
    assert_eq!(config.advertised_url, None);
    assert!(config.platform.is_none(), "no PLATFORM_URL: standalone");
    assert_eq!(config.skills[0].id, "echo");
}

#[test]
fn ports_and_hosts() {
    let dir = temp_dir();
    for (vars, want) in [
        (vec![("PORT", "9000")], 9000),
        (vec![("AGENT_PORT", "9100"), ("PORT", "9000")], 9100),
        (vec![("PORT", "")], 8000),
        (vec![("PORT", "0")], 0),
    ] {
        let (_, listen) = load(&dir, &vars).expect("valid");
        assert_eq!(listen.port, want, "{vars:?}");
    }
    let (_, listen) = load(&dir, &[("AGENT_HOST", "127.0.0.1")]).expect("valid");
    assert_eq!(listen.host, "127.0.0.1");
}

#[test]
fn platform_settings_from_env() {
    let dir = temp_dir();
    let (config, _) = load(
        &dir,
        &[
            ("PLATFORM_URL", "http://host.docker.internal:8080"),
            ("WORKSPACE_ID", "ws-1"),
            ("MOLECULE_WORKSPACE_TOKEN", "tok"),
            ("HEARTBEAT_INTERVAL_SECONDS", "0.5"),
            ("AGENT_URL", "http://ws-abc:8000"),
        ],
    )
    .expect("valid");
    let platform = config.platform.expect("registers");
    assert_eq!(platform.url, "http://host.docker.internal:8080");
    assert_eq!(platform.workspace_id, "ws-1");
    assert_eq!(platform.token.as_deref(), Some("tok"));
    assert_eq!(platform.heartbeat_interval, Duration::from_millis(500));
    assert_eq!(platform.config_dir, *dir);
    assert_eq!(config.advertised_url.as_deref(), Some("http://ws-abc:8000"));
    assert!(
        !format!("{platform:?}").contains("tok\""),
        "the token is redacted"
    );

    let (config, _) = load(&dir, &[("WORKSPACE_ID", "ws-1")]).expect("valid");
    assert!(
        config.platform.is_none(),
        "WORKSPACE_ID alone does not register"
    );
}

#[test]
fn invalid_settings_are_errors() {
    let dir = temp_dir();
    for vars in [
        vec![("PORT", "70000")],
        vec![("PORT", "eighty")],
        vec![("PLATFORM_URL", "http://p:8080")],
        vec![("PLATFORM_URL", "p:8080"), ("WORKSPACE_ID", "w")],
        vec![
            ("PLATFORM_URL", "http://p"),
            ("WORKSPACE_ID", "w"),
            ("HEARTBEAT_INTERVAL_SECONDS", "0"),
        ],
        vec![
            ("PLATFORM_URL", "http://p"),
            ("WORKSPACE_ID", "w"),
            ("HEARTBEAT_INTERVAL_SECONDS", "-1"),
        ],
        vec![
            ("PLATFORM_URL", "http://p"),
            ("WORKSPACE_ID", "w"),
            ("HEARTBEAT_INTERVAL_SECONDS", "NaN"),
        ],
        vec![("AGENT_URL", "ws-abc:8000")],
        vec![("MOLECULE_EXECUTOR", "magic")],
        vec![("MOLECULE_EXECUTOR", "command")],
        vec![("MOLECULE_EXECUTOR", "openai")],
        vec![("ECHO_DELAY_MS", "soon")],
        vec![
            ("MOLECULE_EXECUTOR", "openai"),
            ("OPENAI_MODEL", "m"),
            ("OPENAI_ASK_TOOL", "maybe"),
        ],
    ] {
        let result = load(&dir, &vars);
        assert!(
            matches!(result, Err(AgentError::Config(_))),
            "{vars:?} should be refused"
        );
    }
}

#[test]
fn executors_from_env() {
    let dir = temp_dir();
    let (config, _) = load(&dir, &[("ECHO_DELAY_MS", "25")]).expect("valid");
    assert_eq!(
        config.executor,
        ExecutorConfig::Echo {
            delay: Duration::from_millis(25)
        }
    );

    let (config, _) = load(
        &dir,
        &[
            ("MOLECULE_EXECUTOR", "command"),
            ("MOLECULE_COMMAND", "/bin/cat"),
            ("MOLECULE_COMMAND_ARGS", "-u  -"),
            ("MOLECULE_COMMAND_TIMEOUT_SECONDS", "2.5"),
        ],
    )
    .expect("valid");
    assert_eq!(
        config.executor,
        ExecutorConfig::Command(CommandConfig {
            program: "/bin/cat".into(),
            args: vec!["-u".into(), "-".into()],
            timeout: Duration::from_millis(2500),
        })
    );
    assert_eq!(config.skills[0].id, "command");

    let (config, _) = load(
        &dir,
        &[
            ("MOLECULE_EXECUTOR", "openai"),
            ("OPENAI_MODEL", "m1"),
            ("OPENAI_API_KEY", "sk-secret"),
        ],
    )
    .expect("valid");
    let ExecutorConfig::OpenAi(openai) = config.executor else {
        panic!("openai expected");
    };
    assert_eq!(openai.base_url, "https://api.openai.com/v1");
    assert_eq!(openai.model, "m1");
    assert_eq!(openai.api_key.as_deref(), Some("sk-secret"));
    assert_eq!(openai.timeout, Duration::from_secs(300));
    assert!(!openai.ask_tool, "no tools unless asked for");
    assert!(
        !format!("{openai:?}").contains("sk-secret"),
        "the key is redacted"
    );
    let (config, _) = load(
        &dir,
        &[
            ("MOLECULE_EXECUTOR", "openai"),
            ("OPENAI_MODEL", "m1"),
            ("OPENAI_ASK_TOOL", "on"),
        ],
    )
    .expect("valid");
    let ExecutorConfig::OpenAi(openai) = config.executor else {
        panic!("openai expected");
    };
    assert!(openai.ask_tool);
}

#[test]
fn config_yaml_is_read_and_env_wins() {
    let dir = temp_dir();
    std::fs::write(
        dir.join("config.yaml"),
        "name: Planner\nexecutor: command\ncommand: {program: /bin/cat, args: [-u], timeout_seconds: 3}\nmodel: file-model\nskills: [plan]\n",
    )
    .expect("write config");
    let (config, _) = load(&dir, &[]).expect("valid");
    assert_eq!(config.name, "Planner");
    assert_eq!(
        config.executor,
        ExecutorConfig::Command(CommandConfig {
            program: "/bin/cat".into(),
            args: vec!["-u".into()],
            timeout: Duration::from_secs(3),
        })
    );
    assert_eq!(config.skills[0].id, "plan");

    let (config, _) = load(
        &dir,
        &[("AGENT_NAME", "Env name"), ("MOLECULE_EXECUTOR", "openai")],
    )
    .expect("valid");
    assert_eq!(config.name, "Env name");
    let ExecutorConfig::OpenAi(openai) = config.executor else {
        panic!("env picks openai");
    };
    assert_eq!(
        openai.model, "file-model",
        "the file's model: is the fallback"
    );

    std::fs::write(dir.join("config.yaml"), "executor: [broken").expect("write config");
    assert!(matches!(load(&dir, &[]), Err(AgentError::Config(_))));
}

#[test]
fn workspace_config_path_is_the_fallback_config_dir() {
    let dir = temp_dir();
    std::fs::write(dir.join("config.yaml"), "name: From reference env\n").expect("write config");
    let map: HashMap<&str, String> =
        HashMap::from([("WORKSPACE_CONFIG_PATH", dir.display().to_string())]);
    let (config, _) = from_env(|key| map.get(key).cloned()).expect("valid");
    assert_eq!(config.name, "From reference env");
}
