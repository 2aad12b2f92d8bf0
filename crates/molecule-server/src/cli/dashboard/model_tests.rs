//! Tests of `model.rs` (the helpers are shared with `view_tests.rs`).
use super::*;
use chrono::TimeZone;
use serde_json::json;

pub fn ws(n: u128, name: &str, parent: Option<u128>, status: WorkspaceStatus) -> Workspace {
    Workspace {
        id: Uuid::from_u128(n),
        name: name.into(),
        role: Some(format!("{name} role")),
        tier: 1,
        status,
        status_reason: None,
        agent_card: None,
        a2a_conformance: None,
        url: format!("http://127.0.0.1:90{n:02}"),
        parent_id: parent.map(Uuid::from_u128),
        active_tasks: 0,
        last_error_rate: 0.0,
        last_sample_error: String::new(),
        uptime_seconds: 0,
        current_task: String::new(),
        runtime: "molecule".into(),
        workspace_dir: None,
        x: 0.0,
        y: 0.0,
        collapsed: false,
    }
}

pub fn event(name: &str, id: u128, secs: u32, payload: Value) -> EventEnvelope {
    EventEnvelope {
        event: name.into(),
        workspace_id: if id == 0 {
            String::new()
        } else {
            Uuid::from_u128(id).to_string()
        },
        timestamp: chrono::Utc
            .with_ymd_and_hms(2026, 12, 7, 9, 0, secs)
            .single()
            .unwrap(),
        payload,
    }
}

pub fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

pub fn org() -> Model {
    use WorkspaceStatus::*;
    let mut m = Model::default();
    m.set_workspaces(vec![
        ws(1, "ceo", None, Online),
        ws(2, "eng-lead", Some(1), Online),
        ws(3, "backend", Some(2), Online),
        ws(4, "frontend", Some(2), Provisioning),
        ws(5, "sales", Some(1), Online),
        ws(6, "auditor", None, Paused),
    ]);
    m
}

fn names(m: &Model) -> Vec<(String, usize)> {
    m.rows
        .iter()
        .map(|(id, d)| (m.workspaces[id].name.clone(), *d))
        .collect()
}

#[test]
fn the_org_is_a_tree_in_name_order_and_subtrees_collapse() {
    let mut m = org();
    let n = |v: &[(&str, usize)]| {
        v.iter()
            .map(|(s, d)| (s.to_string(), *d))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&m),
        n(&[
            ("auditor", 0),
            ("ceo", 0),
            ("eng-lead", 1),
            ("backend", 2),
            ("frontend", 2),
            ("sales", 1),
        ])
    );
    m.on_key(key(KeyCode::Down), 10);
    m.on_key(key(KeyCode::Down), 10);
    assert_eq!(m.selected_workspace().unwrap().name, "eng-lead");
    m.on_key(key(KeyCode::Char(' ')), 10);
    assert_eq!(
        names(&m),
        n(&[("auditor", 0), ("ceo", 0), ("eng-lead", 1), ("sales", 1)])
    );
    m.on_key(key(KeyCode::Char('/')), 10);
    for c in "end".chars() {
        m.on_key(key(KeyCode::Char(c)), 10);
    }
    m.on_key(key(KeyCode::Enter), 10);
    assert_eq!(names(&m), n(&[("backend", 0), ("frontend", 0)]));
    m.on_key(key(KeyCode::Esc), 10);
    assert_eq!(m.rows.len(), 4);
}

#[test]
fn events_change_rows_and_unknown_workspaces_are_fetched() {
    let mut m = org();
    let e = m.apply_event(event(
        "WORKSPACE_OFFLINE",
        3,
        1,
        json!({"reason": "heartbeat expired"}),
    ));
    assert_eq!(e, Effect::Fetch(Uuid::from_u128(3)));
    let w = &m.workspaces[&Uuid::from_u128(3)];
    assert_eq!(w.status, WorkspaceStatus::Offline);
    assert_eq!(w.status_reason.as_deref(), Some("heartbeat expired"));
    m.apply_event(event(
        "TASK_UPDATED",
        3,
        2,
        json!({"current_task": "indexing", "active_tasks": 2}),
    ));
    assert_eq!(m.workspaces[&Uuid::from_u128(3)].active_tasks, 2);
    assert_eq!(
        m.apply_event(event("WORKSPACE_ONLINE", 99, 3, json!({}))),
        Effect::Fetch(Uuid::from_u128(99))
    );
    m.apply_event(event("WORKSPACE_REMOVED", 4, 4, json!({})));
    assert!(!m.workspaces.contains_key(&Uuid::from_u128(4)));
    assert_eq!(
        m.apply_event(event("RESYNC", 0, 5, json!({"missed": 3}))),
        Effect::Resync
    );
    m.apply_event(event(
        "FLEET_BREAKER_TRIPPED",
        0,
        6,
        json!({"reason": "4 of 5 look gone"}),
    ));
    assert!(m.breaker.as_ref().unwrap().open);
    for i in 0..(MAX_EVENTS + 10) {
        m.apply_event(event("TASK_UPDATED", 3, 0, json!({"n": i})));
    }
    assert_eq!(m.events.len(), MAX_EVENTS);
}

#[test]
fn actions_need_confirmation() {
    let mut m = org();
    m.on_key(key(KeyCode::Down), 10); // ceo
    assert_eq!(m.on_key(key(KeyCode::Char('d')), 10), Effect::None);
    assert!(m.notice.contains("every child"), "{}", m.notice);
    assert_eq!(m.on_key(key(KeyCode::Char('n')), 10), Effect::None);
    assert_eq!(m.mode, Mode::Normal);
    m.on_key(key(KeyCode::Char('r')), 10);
    assert_eq!(
        m.on_key(key(KeyCode::Char('y')), 10),
        Effect::Act(Action::Restart, Uuid::from_u128(1))
    );
}

#[test]
fn the_chat_pane_streams_an_answer_and_keeps_the_conversation() {
    let mut m = org();
    m.on_key(key(KeyCode::Enter), 10); // auditor
    for c in "hi".chars() {
        m.on_key(key(KeyCode::Char(c)), 10);
    }
    let id = Uuid::from_u128(6);
    let Effect::Send(target, text, _) = m.on_key(key(KeyCode::Enter), 10) else {
        panic!("no send")
    };
    assert_eq!((target, text.as_str()), (id, "hi"));
    // A second Enter while the answer streams sends nothing.
    m.on_key(key(KeyCode::Char('x')), 10);
    assert_eq!(m.on_key(key(KeyCode::Enter), 10), Effect::None);
    m.chat_piece(id, Piece::Text("echo".into()));
    m.chat_piece(id, Piece::Text(": hi".into()));
    let conv = Conversation {
        context_id: Some("c1".into()),
        task_id: None,
    };
    m.chat_done(id, Ok(("completed".into(), conv.clone())));
    let chat = m.chat.as_ref().unwrap();
    assert_eq!(
        chat.lines,
        [
            ChatLine::You("hi".into()),
            ChatLine::Agent("echo: hi".into())
        ]
    );
    assert_eq!(chat.conversation, conv);
    m.on_key(key(KeyCode::Esc), 10);
    assert_eq!(m.mode, Mode::Normal);
}
