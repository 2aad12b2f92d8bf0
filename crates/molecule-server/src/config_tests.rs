//! Unit tests of `config.rs`: defaults, validation, production rules.
use super::*;
use std::collections::HashMap;

fn raw(pairs: &[(&str, &str)]) -> RawConfig {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    RawConfig::from_env(|k| m.get(k).cloned())
}

#[test]
fn defaults_are_the_reference_defaults() {
    let c = raw(&[]).validate().unwrap();
    assert_eq!(c.port, 8080);
    assert_eq!(c.bind, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(c.mode, Mode::Development);
    assert_eq!(c.rate_limit, 600);
    assert_eq!(c.liveness_ttl, Duration::from_secs(180));
    assert_eq!(
        c.database,
        Database::Sqlite(PathBuf::from("./molecule-data/molecule.db"))
    );
    assert_eq!(
        c.cors_origins,
        ["http://localhost:3000", "http://localhost:3001"]
    );
}

#[test]
fn secrets_key_is_required_in_production_and_validated_everywhere() {
    let err = raw(&[
        ("MOLECULE_ENV", "production"),
        (
            "MOLECULE_ADMIN_TOKEN",
            "q0Jm6Vf3s9C+P1xZb2LkR8tY4nWe7HuA5gDiK0oQmTc=",
        ),
        ("PORT", "nope"),
    ])
    .validate()
    .unwrap_err()
    .to_string();
    assert!(err.contains("SECRETS_ENCRYPTION_KEY"), "{err}");
    assert!(err.contains("PORT"), "problems are listed together: {err}");
    let err = raw(&[("SECRETS_ENCRYPTION_KEY", "too-short")])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("32 bytes"), "{err}");
    assert!(!err.contains("too-short"), "the key is never echoed: {err}");
    let ok = raw(&[
        ("MOLECULE_ENV", "production"),
        (
            "MOLECULE_ADMIN_TOKEN",
            "q0Jm6Vf3s9C+P1xZb2LkR8tY4nWe7HuA5gDiK0oQmTc=",
        ),
        (
            "SECRETS_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
    ])
    .validate()
    .unwrap();
    assert!(ok.secrets_key.is_some());
    assert!(raw(&[]).validate().unwrap().secrets_key.is_none());
}

#[test]
fn development_refuses_a_non_loopback_bind() {
    let err = raw(&[("MOLECULE_BIND", "0.0.0.0")]).validate().unwrap_err();
    assert!(
        err.to_string()
            .contains("refusing to start open on 0.0.0.0"),
        "{err}"
    );
    let ok = raw(&[
        ("MOLECULE_BIND", "0.0.0.0"),
        ("MOLECULE_ENV", "production"),
        (
            "MOLECULE_ADMIN_TOKEN",
            "q0Jm6Vf3s9C+P1xZb2LkR8tY4nWe7HuA5gDiK0oQmTc=",
        ),
        (
            "SECRETS_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
    ]);
    assert_eq!(ok.validate().unwrap().mode, Mode::Production);
}

#[test]
fn production_requires_an_admin_token() {
    let err = raw(&[("MOLECULE_ENV", "production")])
        .validate()
        .unwrap_err();
    assert!(
        err.to_string().contains("requires MOLECULE_ADMIN_TOKEN"),
        "{err}"
    );
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let err = raw(&[
        ("PORT", "eighty"),
        ("RATE_LIMIT", "0"),
        ("DATABASE_URL", "mysql://x"),
        ("MOLECULE_ENV", "staging"),
        ("PLATFORM_URL", "ftp://x"),
    ])
    .validate()
    .unwrap_err();
    assert_eq!(err.0.len(), 5, "{err}");
}

#[test]
fn cors_origins_are_trimmed_and_postgres_urls_accepted() {
    let c = raw(&[
        ("CORS_ORIGINS", "https://a.example, https://b.example"),
        ("DATABASE_URL", "postgres://u@h/db"),
    ])
    .validate()
    .unwrap();
    assert_eq!(c.cors_origins, ["https://a.example", "https://b.example"]);
    assert_eq!(c.database, Database::Postgres("postgres://u@h/db".into()));
}

#[test]
fn agent_ca_file_must_hold_usable_pem_certificates() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    let fixture = format!("{dir}/tests/api/tls/ca.pem");
    let c = raw(&[("MOLECULE_AGENT_CA_FILE", fixture.as_str())])
        .validate()
        .unwrap();
    assert_eq!(c.agent_ca_certs.len(), 1);
    assert!(raw(&[]).validate().unwrap().agent_ca_certs.is_empty());

    let dir = std::env::temp_dir().join(format!("molecule-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    for (path, says) in [
        (&empty, "holds no PEM certificate"),
        (&garbage, "MOLECULE_AGENT_CA_FILE"),
        (&missing, "cannot read it"),
    ] {
        let err = raw(&[("MOLECULE_AGENT_CA_FILE", path.to_str().unwrap())])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{path:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn connection_limits_and_allowed_hosts_have_defaults_and_are_validated() {
    let c = raw(&[]).validate().unwrap();
    assert_eq!(
        c.connections,
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
        }
    );
    assert!(c.allowed_hosts.is_empty());
    let c = raw(&[
        ("MOLECULE_HTTP_HEADER_TIMEOUT_SECONDS", "2.5"),
        ("MOLECULE_MAX_CONNECTIONS", "50"),
        ("MOLECULE_MAX_CONNECTIONS_PER_IP", "50"),
        (
            "MOLECULE_ALLOWED_HOSTS",
            " molecule.example.com , 10.0.0.5:8080 ",
        ),
    ])
    .validate()
    .unwrap();
    assert_eq!(
        c.connections.header_read_timeout,
        Duration::from_millis(2_500)
    );
    assert_eq!(c.connections.max_connections, 50);
    let hosts: Vec<String> = c.allowed_hosts.iter().map(|h| h.to_string()).collect();
    assert_eq!(hosts, ["molecule.example.com", "10.0.0.5:8080"]);
    let err = raw(&[
        ("MOLECULE_HTTP_BODY_TIMEOUT_SECONDS", "0"),
        ("MOLECULE_HTTP_IDLE_TIMEOUT_SECONDS", "soon"),
        ("MOLECULE_MAX_CONNECTIONS", "10"),
        ("MOLECULE_MAX_CONNECTIONS_PER_IP", "11"),
        ("MOLECULE_ALLOWED_HOSTS", "http://evil.example/"),
    ])
    .validate()
    .unwrap_err()
    .to_string();
    for want in [
        "MOLECULE_HTTP_BODY_TIMEOUT_SECONDS",
        "MOLECULE_HTTP_IDLE_TIMEOUT_SECONDS",
        "must not exceed MOLECULE_MAX_CONNECTIONS",
        "MOLECULE_ALLOWED_HOSTS entry",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let err = raw(&[("MOLECULE_MAX_CONNECTIONS_PER_IP", "-1")])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("positive integer"), "{err}");
}

#[test]
fn activity_bounds_have_defaults_and_minimums() {
    let c = raw(&[]).validate().unwrap();
    assert_eq!(c.activity_queue_bytes, 64 << 20);
    assert_eq!(
        c.activity_budget,
        crate::app::activity::BudgetConfig {
            bytes: 16 << 20,
            rows: 6_000,
            window: Duration::from_secs(60),
        }
    );
    let c = raw(&[
        ("MOLECULE_ACTIVITY_QUEUE_BYTES", "2097152"),
        ("MOLECULE_ACTIVITY_BUDGET_BYTES", "1048576"),
        ("MOLECULE_ACTIVITY_BUDGET_ROWS", "10"),
        ("MOLECULE_ACTIVITY_BUDGET_WINDOW_SECONDS", "0.5"),
    ])
    .validate()
    .unwrap();
    assert_eq!(c.activity_queue_bytes, 2 << 20);
    assert_eq!(c.activity_budget.rows, 10);
    assert_eq!(c.activity_budget.window, Duration::from_millis(500));
    let err = raw(&[
        ("MOLECULE_ACTIVITY_QUEUE_BYTES", "1000"),
        ("MOLECULE_ACTIVITY_BUDGET_BYTES", "lots"),
        ("MOLECULE_ACTIVITY_BUDGET_ROWS", "0"),
    ])
    .validate()
    .unwrap_err()
    .to_string();
    for name in [
        "MOLECULE_ACTIVITY_QUEUE_BYTES",
        "MOLECULE_ACTIVITY_BUDGET_BYTES",
        "MOLECULE_ACTIVITY_BUDGET_ROWS",
    ] {
        assert!(err.contains(name), "{name} in {err}");
    }
}

#[test]
fn outbound_allow_is_a_validated_list_of_networks() {
    assert!(raw(&[]).validate().unwrap().outbound_allow.is_empty());
    let c = raw(&[("MOLECULE_OUTBOUND_ALLOW", "127.0.0.0/8, 10.0.0.0/8,::1")])
        .validate()
        .unwrap();
    let shown: Vec<String> = c.outbound_allow.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["127.0.0.0/8", "10.0.0.0/8", "::1/128"]);
    let err = raw(&[("MOLECULE_OUTBOUND_ALLOW", "10.1.0.0/8,intranet")])
        .validate()
        .unwrap_err();
    assert_eq!(err.0.len(), 2, "every bad entry is listed: {err}");
    assert!(err.to_string().contains("MOLECULE_OUTBOUND_ALLOW"), "{err}");
}

#[test]
fn debug_output_never_shows_the_admin_token_or_the_database_password() {
    let c = raw(&[
        ("MOLECULE_ENV", "production"),
        (
            "MOLECULE_ADMIN_TOKEN",
            "q0Jm6Vf3s9C+P1xZb2LkR8tY4nWe7HuA5gDiK0oQmTc=",
        ),
        (
            "SECRETS_ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ),
        (
            "DATABASE_URL",
            "postgres://molecule:hunter2@db.internal:5432/molecule",
        ),
    ])
    .validate()
    .unwrap();
    let shown = format!("{c:?}");
    for secret in ["q0Jm6Vf3", "hunter2", "MDEyMzQ1"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("molecule:REDACTED@db.internal"), "{shown}");
    assert_eq!(c.admin_token.as_deref().map(str::len), Some(44));
}

#[test]
fn tier_limits_come_from_the_tier_variables_and_bad_ones_are_refused() {
    let defaults = molecule_provisioner::docker::TierLimits::default();
    let c = raw(&[
        ("TIER2_MEMORY_MB", "256"),
        ("TIER2_CPU_SHARES", "512"),
        ("TIER4_MEMORY_MB", " 8192 "),
    ])
    .validate()
    .unwrap();
    assert_eq!(
        (c.tier_limits.t2.memory_mb, c.tier_limits.t2.cpu_shares),
        (256, 512)
    );
    assert_eq!(c.tier_limits.t3, defaults.t3);
    assert_eq!(c.tier_limits.t4.memory_mb, 8192);
    assert_eq!(c.tier_limits.t4.cpu_shares, defaults.t4.cpu_shares);
    assert_eq!(raw(&[]).validate().unwrap().tier_limits, defaults);

    let err = raw(&[("TIER3_MEMORY_MB", "-5"), ("TIER4_CPU_SHARES", "lots")])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("TIER3_MEMORY_MB=\"-5\""), "{err}");
    assert!(err.contains("TIER4_CPU_SHARES=\"lots\""), "{err}");
}

#[test]
fn langfuse_is_all_three_variables_or_none_and_the_secret_is_redacted() {
    assert_eq!(raw(&[]).validate().unwrap().langfuse, None);
    let c = raw(&[
        ("LANGFUSE_HOST", "https://lf.example/"),
        ("LANGFUSE_PUBLIC_KEY", "pk"),
        ("LANGFUSE_SECRET_KEY", "sk-very-secret"),
    ])
    .validate()
    .unwrap();
    let lf = c.langfuse.clone().unwrap();
    assert_eq!(
        (lf.host.as_str(), lf.public_key.as_str()),
        ("https://lf.example", "pk")
    );
    assert!(!format!("{c:?}").contains("sk-very-secret"));
    for partial in [
        &[("LANGFUSE_HOST", "https://lf.example")][..],
        &[("LANGFUSE_PUBLIC_KEY", "pk"), ("LANGFUSE_SECRET_KEY", "sk")],
        &[
            ("LANGFUSE_HOST", "lf.example"),
            ("LANGFUSE_PUBLIC_KEY", "pk"),
            ("LANGFUSE_SECRET_KEY", "sk"),
        ],
    ] {
        let err = raw(partial).validate().unwrap_err();
        assert!(err.to_string().contains("LANGFUSE"), "{partial:?}: {err}");
    }
}

#[test]
fn agent_heartbeat_interval_is_set_and_kept_below_the_ttl() {
    let c = raw(&[]).validate().unwrap();
    assert_eq!(c.agent_heartbeat_every, Duration::from_secs(30));
    let c = raw(&[
        ("MOLECULE_AGENT_HEARTBEAT_SECONDS", "0.5"),
        ("MOLECULE_LIVENESS_TTL_SECONDS", "4"),
    ])
    .validate()
    .unwrap();
    assert_eq!(c.agent_heartbeat_every, Duration::from_millis(500));
    let err = raw(&[("MOLECULE_LIVENESS_TTL_SECONDS", "20")])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("MOLECULE_AGENT_HEARTBEAT_SECONDS (30 s) must be shorter"),
        "{err}"
    );
    let err = raw(&[("MOLECULE_AGENT_HEARTBEAT_SECONDS", "-1")])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("MOLECULE_AGENT_HEARTBEAT_SECONDS=\"-1\""),
        "{err}"
    );
}
