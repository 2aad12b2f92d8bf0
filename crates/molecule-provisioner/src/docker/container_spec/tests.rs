//! Table tests of the container shape per tier, the overrides, the port
//! read-back and the config archive.

use super::*;
use std::io::Read;
use std::path::PathBuf;

fn spec(tier: i32) -> WorkspaceSpec {
    WorkspaceSpec {
        workspace_id: Uuid::parse_str("3f1c0b7e-1234-4000-8000-000000000001").unwrap(),
        name: "pm".into(),
        tier,
        runtime: "langgraph".into(),
        image: "molecule/agent:latest".into(),
        env: vec![("WORKSPACE_ID".into(), "x".into())],
        config_files: vec![],
        workspace_dir: Some((PathBuf::from("/srv/repo"), DirAccess::ReadOnly)),
        generation: "2026-12-08T02:00:00.123456Z".into(),
    }
}

fn place(limits: &TierLimits, host_cpus: Option<i64>) -> Placement<'_> {
    Placement {
        network: "molecule-net",
        limits,
        host_cpus,
        instance: None,
    }
}

#[test]
fn tiers_shape_the_container() {
    let limits = TierLimits::default();
    // tier, read-only rootfs, memory MiB, CPUs, privileged+host pid, host network
    let cases = [
        (1, true, None, None, false, false),
        (2, false, Some(512), Some(1), false, false),
        (0, false, Some(512), Some(1), false, false),
        (9, false, Some(512), Some(1), false, false),
        (3, false, Some(2048), Some(2), true, false),
        (4, false, Some(4096), Some(4), true, true),
    ];
    for (tier, ro, mem, cpus, privileged, host_net) in cases {
        let body = create_body(&spec(tier), place(&limits, None));
        let host = body.host_config.clone().unwrap();
        assert_eq!(host.readonly_rootfs.unwrap_or(false), ro, "tier {tier}");
        assert_eq!(host.tmpfs.is_some(), ro, "tier {tier}");
        assert_eq!(host.memory, mem.map(|m| m * MIB), "tier {tier}");
        assert_eq!(
            host.nano_cpus,
            cpus.map(|c| c * 1_000_000_000),
            "tier {tier}"
        );
        assert_eq!(host.privileged.unwrap_or(false), privileged, "tier {tier}");
        assert_eq!(
            host.pid_mode.as_deref() == Some("host"),
            privileged,
            "tier {tier}"
        );
        let want_mode = if host_net { "host" } else { "molecule-net" };
        assert_eq!(host.network_mode.as_deref(), Some(want_mode), "tier {tier}");
        assert_eq!(host.port_bindings.is_some(), !host_net, "tier {tier}");
        assert_eq!(body.networking_config.is_some(), !host_net, "tier {tier}");
        assert_eq!(body.hostname.is_some(), !host_net, "tier {tier}");
        let binds = host.binds.unwrap();
        assert_eq!(binds[0], "ws-3f1c0b7e-123-configs:/configs", "tier {tier}");
        assert_eq!(
            binds.contains(&"/srv/repo:/workspace:ro".to_string()),
            tier != 1,
            "tier {tier}"
        );
        assert_eq!(
            binds.iter().any(|b| b.starts_with("/var/run/docker.sock")),
            tier == 4,
            "tier {tier}"
        );
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
    }
}

#[test]
fn container_carries_name_labels_env_and_loopback_port() {
    let limits = TierLimits::default();
    let body = create_body(&spec(2), place(&limits, None));
    assert_eq!(body.hostname.as_deref(), Some("ws-3f1c0b7e-123"));
    let labels = body.labels.unwrap();
    assert_eq!(
        labels[LABEL_WORKSPACE],
        "3f1c0b7e-1234-4000-8000-000000000001"
    );
    assert_eq!(labels[LABEL_MANAGED], "true");
    assert_eq!(labels[LABEL_GENERATION], "2026-12-08T02:00:00.123456Z");
    assert_eq!(body.env.unwrap(), vec!["WORKSPACE_ID=x".to_string()]);
    assert_eq!(body.exposed_ports.unwrap(), vec!["8000/tcp".to_string()]);
    let host = body.host_config.unwrap();
    let binding = &host.port_bindings.unwrap()["8000/tcp"].clone().unwrap()[0];
    assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(binding.host_port.as_deref(), Some(""));
    assert_eq!(
        host.extra_hosts.unwrap(),
        vec!["host.docker.internal:host-gateway".to_string()]
    );
    let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
    assert_eq!(
        endpoints["molecule-net"].aliases.as_deref(),
        Some(&["ws-3f1c0b7e-123".to_string()][..])
    );
}

#[test]
fn claude_code_gets_a_sessions_volume_except_on_tier_1() {
    let limits = TierLimits::default();
    for (runtime, tier, want) in [
        ("claude-code", 2, true),
        ("claude-code", 4, true),
        ("claude-code", 1, false),
        ("langgraph", 2, false),
    ] {
        let mut s = spec(tier);
        s.runtime = runtime.into();
        let binds = create_body(&s, place(&limits, None))
            .host_config
            .unwrap()
            .binds
            .unwrap();
        let bound =
            binds.contains(&"ws-3f1c0b7e-123-claude-sessions:/root/.claude/sessions".to_string());
        assert_eq!(bound, want, "{runtime} tier {tier}: {binds:?}");
        assert_eq!(needs_sessions_volume(&s), want);
    }
}

#[test]
fn read_write_dir_is_bound_without_suffix() {
    let mut s = spec(2);
    s.workspace_dir = Some((PathBuf::from("/srv/repo"), DirAccess::ReadWrite));
    let limits = TierLimits::default();
    let binds = create_body(&s, place(&limits, None))
        .host_config
        .unwrap()
        .binds
        .unwrap();
    assert!(
        binds.contains(&"/srv/repo:/workspace".to_string()),
        "{binds:?}"
    );
}

#[test]
fn cpu_cap_never_exceeds_the_host() {
    let limits = TierLimits::default();
    let nano = |tier| {
        create_body(&spec(tier), place(&limits, Some(2)))
            .host_config
            .unwrap()
            .nano_cpus
    };
    assert_eq!(nano(4), Some(2_000_000_000));
    assert_eq!(nano(3), Some(2_000_000_000));
    assert_eq!(nano(2), Some(1_000_000_000));
}

#[test]
fn tier_limits_set_the_container_cpu_and_memory() {
    let limits = TierLimits {
        t2: TierLimit {
            memory_mb: 256,
            cpu_shares: 512,
        },
        ..TierLimits::default()
    };
    let body = create_body(&spec(2), place(&limits, None));
    let host = body.host_config.unwrap();
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.memory, Some(256 << 20));
}

#[test]
fn published_port_prefers_loopback() {
    let binding = |ip: &str, port: &str| PortBinding {
        host_ip: Some(ip.into()),
        host_port: Some(port.into()),
    };
    let map = |b: Option<Vec<PortBinding>>| PortMap::from([("8000/tcp".to_string(), b)]);
    let cases = [
        (map(Some(vec![binding("127.0.0.1", "49153")])), Some(49153)),
        (
            map(Some(vec![binding("::1", "1"), binding("127.0.0.1", "2")])),
            Some(2),
        ),
        (map(Some(vec![binding("0.0.0.0", "3")])), Some(3)),
        (map(Some(vec![binding("127.0.0.1", "")])), None),
        (map(Some(vec![binding("127.0.0.1", "0")])), None),
        (map(Some(vec![])), None),
        (map(None), None),
        (PortMap::new(), None),
    ];
    for (ports, want) in cases {
        assert_eq!(published_port(&ports), want, "{ports:?}");
    }
}

#[test]
fn config_archive_holds_files_and_parent_dirs() {
    let files = vec![
        ("config.yaml".to_string(), b"name: pm\n".to_vec()),
        ("skills/a/SKILL.md".to_string(), b"# a".to_vec()),
        ("./skills/b.md".to_string(), b"b".to_vec()),
    ];
    let bytes = config_archive(&files).unwrap();
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mode = entry.header().mode().unwrap();
        let mut body = String::new();
        entry.read_to_string(&mut body).unwrap();
        seen.push((path, mode, body));
    }
    let want = [
        ("config.yaml", 0o644, "name: pm\n"),
        ("skills", 0o755, ""),
        ("skills/a", 0o755, ""),
        ("skills/a/SKILL.md", 0o644, "# a"),
        ("skills/b.md", 0o644, "b"),
    ];
    let seen: Vec<_> = seen
        .iter()
        .map(|(p, m, b)| (p.trim_end_matches('/'), *m, b.as_str()))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn config_paths_must_stay_inside() {
    for bad in ["/etc/passwd", "../x", "a/../../x", "", ".", "a/..", "a//b"] {
        assert!(
            config_archive(&[(bad.to_string(), vec![])]).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn files_helpers_mount_only_the_config_volume_and_are_not_workspaces() {
    let id = spec(2).workspace_id;
    let args = vec!["fs-rm".to_string(), "/configs/a".to_string()];
    let body = helper_body(id, "molecule/agent:9.9.9", args.clone(), Some("inst"));
    assert_eq!(body.image.as_deref(), Some("molecule/agent:9.9.9"));
    assert_eq!(body.entrypoint, Some(vec![AGENT_BINARY.to_string()]));
    assert_eq!(body.cmd, Some(args));
    let labels = body.labels.unwrap();
    assert_eq!(labels.get(LABEL_HELPER_FOR), Some(&id.to_string()));
    assert_eq!(labels.get(LABEL_INSTANCE).map(String::as_str), Some("inst"));
    assert!(!labels.contains_key(LABEL_WORKSPACE), "{labels:?}");
    let host = body.host_config.unwrap();
    assert_eq!(
        host.binds,
        Some(vec!["ws-3f1c0b7e-123-configs:/configs".to_string()])
    );
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert!(host.port_bindings.is_none() && !host.privileged.unwrap_or(false));
    let (a, b) = (helper_name(id), helper_name(id));
    assert!(a.starts_with("ws-3f1c0b7e-123-files-") && a != b, "{a} {b}");
}
