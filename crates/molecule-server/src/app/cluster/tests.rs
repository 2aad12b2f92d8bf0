use super::*;

/// Every kind of note survives the trip through JSON, with an `ack`
/// set (a variant's field named like a note's would be taken by it).
#[test]
fn every_note_round_trips() {
    let id = Uuid::new_v4();
    let envelope = EventEnvelope {
        event: "WORKSPACE_ONLINE".into(),
        workspace_id: id.to_string(),
        timestamp: chrono::Utc::now(),
        payload: serde_json::json!({ "from": "x", "ack": 1, "kind": "y" }),
    };
    let all = [
        What::Workspace {
            id,
            status_at: None,
        },
        What::Workspace {
            id,
            status_at: Some(chrono::Utc::now()),
        },
        What::Event {
            workspace_id: Some(id),
            envelope,
        },
        What::Gone {
            id,
            reason: "gone".into(),
        },
        What::Hello,
        What::Bye,
        What::Ack { to: id, applied: 7 },
        What::Superseded { id, reset: true },
        What::Restarting { id },
        What::Breaker { open: true },
        What::Missed,
        What::Lost,
    ];
    for what in all {
        let note = Note {
            from: Uuid::new_v4(),
            ack: Some(3),
            what,
        };
        let text = serde_json::to_string(&note).unwrap();
        let back: Note = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(format!("{back:?}"), format!("{note:?}"), "{text}");
    }
}

/// A note dropped because the outgoing queue was full is owned up to
/// once there is room: one `lost` note, however many were dropped.
#[test]
fn notes_dropped_on_a_full_queue_are_owned_up_to_once_there_is_room() {
    let cluster = Cluster::default();
    let me = Uuid::new_v4();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(2);
    cluster.inner.id.set(me).unwrap();
    let _ = cluster.inner.outbox.set(tx);
    let id = Uuid::new_v4();
    for _ in 0..5 {
        cluster.workspace_changed(id);
    }
    cluster.own_up_to_lost_notes();
    let kinds = |rx: &mut mpsc::Receiver<Outgoing>| {
        let mut kinds = Vec::new();
        while let Ok((note, _)) = rx.try_recv() {
            let note: Note = serde_json::from_str(&note).unwrap();
            assert_eq!(note.from, me);
            kinds.push(format!("{:?}", note.what));
        }
        kinds
    };
    let queued = kinds(&mut rx);
    assert_eq!(queued.len(), 2, "the queue held two: {queued:?}");
    assert!(
        queued.iter().all(|k| k.starts_with("Workspace")),
        "{queued:?}"
    );
    // Room again: the loss is owned up to, once.
    cluster.own_up_to_lost_notes();
    cluster.own_up_to_lost_notes();
    assert_eq!(kinds(&mut rx), ["Lost"]);
    // Nothing dropped since: nothing to own up to.
    cluster.own_up_to_lost_notes();
    assert!(kinds(&mut rx).is_empty());
}
