//! Tests of `view.rs`: snapshots of the panes after scripted events and keys.
use super::super::model::tests::{event, key, org, ws};
use super::*;
use molecule_types::dto::{FleetView, Liveness, SubsystemLiveness};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use serde_json::json;

/// The screen as text, one line per row, trailing spaces trimmed.
pub fn screen(m: &Model, width: u16, height: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| draw(f, m)).unwrap();
    let buf = t.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares with `snapshots/<name>.txt`; `UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/cli/dashboard/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{got}\n")).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {} (run with UPDATE_SNAPSHOTS=1)",
            path.display()
        )
    });
    assert_eq!(got, want.trim_end_matches('\n'), "snapshot {name} differs");
}

fn scripted() -> Model {
    let mut m = org();
    m.link = Link::Live;
    m.set_liveness(Ok(Liveness {
        subsystems: [
            ("health_sweep", 2.0, false),
            ("scheduler", 31.0, false),
            ("liveness", 600.0, true),
        ]
        .into_iter()
        .map(|(n, ago, stale)| {
            (
                n.to_string(),
                SubsystemLiveness {
                    last_tick_at: None,
                    seconds_ago: Some(ago),
                    period_seconds: 30.0,
                    state: "idle".into(),
                    stale,
                    panics: 0,
                    last_error: None,
                    last_duration_seconds: None,
                },
            )
        })
        .collect(),
        fleet: Some(FleetView {
            breaker_open: false,
        }),
        channels: Default::default(),
        replica: None,
    }));
    m.apply_event(event("WORKSPACE_ONLINE", 4, 1, json!({})));
    m.apply_event(event(
        "TASK_UPDATED",
        3,
        2,
        json!({"current_task": "migrating the schema", "active_tasks": 2}),
    ));
    m.apply_event(event(
        "WORKSPACE_OFFLINE",
        5,
        3,
        json!({"reason": "heartbeat expired 180s ago"}),
    ));
    m.apply_event(event(
        "WORKSPACE_RESTART_DECISION",
        5,
        4,
        json!({"decision": "restart", "reason": "container exited (137)"}),
    ));
    m
}

#[test]
fn tree_events_and_health_after_scripted_events() {
    let mut m = scripted();
    for _ in 0..5 {
        m.on_key(key(KeyCode::Down), 10); // to sales
    }
    snapshot("org", &screen(&m, 110, 28));
}

#[test]
fn the_breaker_and_a_lost_feed_show_in_health() {
    let mut m = scripted();
    m.apply_event(event(
        "FLEET_BREAKER_TRIPPED",
        0,
        5,
        json!({"reason": "(4 of 6 looked gone at once)"}),
    ));
    m.link = Link::Down("connection refused".into());
    snapshot("breaker", &screen(&m, 110, 28));
}

#[test]
fn chat_pane_and_confirmation() {
    let mut m = scripted();
    m.on_key(key(KeyCode::Enter), 10);
    for c in "status?".chars() {
        m.on_key(key(KeyCode::Char(c)), 10);
    }
    m.on_key(key(KeyCode::Enter), 10);
    let id = m.chat.as_ref().unwrap().target;
    m.chat_piece(id, crate::cli::chat::Piece::Text("all quiet".into()));
    snapshot("chat", &screen(&m, 110, 28));
    m.on_key(key(KeyCode::Esc), 10);
    m.on_key(key(KeyCode::Char('p')), 10);
    let s = screen(&m, 110, 28);
    assert!(
        s.lines().last().unwrap().contains("pause auditor? y/N"),
        "{s}"
    );
}

#[test]
fn a_thousand_workspaces_draw_only_what_fits_and_follow_the_selection() {
    let mut m = Model::default();
    let mut all = vec![ws(1, "root", None, WorkspaceStatus::Online)];
    for i in 2..=1000u128 {
        let parent = if i <= 40 { 1 } else { 2 + (i % 39) };
        all.push(ws(
            i,
            &format!("agent-{i:04}"),
            Some(parent),
            WorkspaceStatus::Online,
        ));
    }
    m.set_workspaces(all);
    assert_eq!(m.rows.len(), 1000);
    // Every workspace's status changes, each followed by the re-read of
    // its row (which rebuilds the tree), then 100 frames are drawn. The
    // time is printed, not asserted (`cargo test --release -p
    // molecule-server --bin molecule thousand -- --nocapture`).
    let started = std::time::Instant::now();
    for i in 1..=1000u128 {
        let id = uuid::Uuid::from_u128(i);
        m.apply_event(event("WORKSPACE_DEGRADED", i, 0, json!({"reason": "slow"})));
        m.apply_event(event(
            "TASK_UPDATED",
            i,
            0,
            json!({"current_task": "t", "active_tasks": 1}),
        ));
        let row = m.workspaces.get(&id).cloned();
        m.set_workspace(id, row);
    }
    let events = started.elapsed();
    m.on_key(key(KeyCode::End), 10);
    let mut t = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..100 {
        t.draw(|f| draw(f, &m)).unwrap();
    }
    eprintln!(
        "1000 workspaces: 2000 events and 1000 row re-reads in {events:?}; one 200x60 frame in {:?}",
        started.elapsed() / 100
    );
    let last = m.workspaces[&m.rows[999].0].name.clone();
    let s = screen(&m, 110, 28);
    assert!(s.contains(&last), "{s}");
    assert!(s.contains("1000 workspaces: 1000 degraded"), "{s}");
    assert!(!s.contains(" root "), "the top scrolled away: {s}");
}
