//! `molecule dashboard`: the org live in the terminal (ratatui). The state
//! and its rules are in `model.rs`, drawing in `view.rs`; this file is the
//! loop that feeds them: keys from a reader thread, the `/ws` feed
//! (reconnecting with backoff and re-reading the org after every
//! (re)connect and on `RESYNC`), `/admin/liveness` every few seconds, and
//! the API calls the operator's actions ask for. Every input is one message
//! on one channel; the screen is redrawn after each batch of them.

pub mod model;
pub mod view;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Result, bail};
use molecule_client::{Client, Method};
use molecule_types::EventEnvelope;
use molecule_types::dto::{Liveness, Workspace};
use ratatui::crossterm::event::{self as term, Event as TermEvent, KeyEventKind};
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use uuid::Uuid;

use super::chat::{self, Conversation, Piece};
use model::{Action, Effect, Link, Model};

/// How often health is re-read (there is no event for a task's tick).
const HEALTH_EVERY: Duration = Duration::from_secs(5);

enum Msg {
    Key(ratatui::crossterm::event::KeyEvent),
    Redraw,
    Link(Link),
    Event(EventEnvelope),
    Org(Result<Vec<Workspace>, String>),
    One(Uuid, Option<Box<Workspace>>),
    Health(Result<Liveness, String>),
    Activity(Uuid, Vec<Value>),
    Notice(String),
    ChatPiece(Uuid, Piece),
    ChatDone(Uuid, Result<(String, Conversation), String>),
}

pub async fn dashboard(c: Client) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the dashboard needs a terminal (for scripts: molecule ws list -o json, molecule events --follow)"
        );
    }
    let (tx, mut rx) = unbounded_channel();
    spawn_keys(tx.clone());
    tokio::spawn(feed(c.clone(), tx.clone()));
    tokio::spawn(health(c.clone(), tx.clone()));

    let mut terminal = ratatui::init();
    let mut m = Model::default();
    let result: Result<()> = async {
        loop {
            let page = view::tree_page(terminal.get_frame().area());
            terminal.draw(|f| view::draw(f, &m))?;
            let Some(first) = rx.recv().await else {
                return Ok(());
            };
            // Everything already waiting is applied before the next frame:
            // a burst of events costs one redraw.
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            for msg in batch {
                let effect = match msg {
                    Msg::Key(k) => m.on_key(k, page),
                    Msg::Redraw => Effect::None,
                    Msg::Link(l) => {
                        let resync = l == Link::Live;
                        m.link = l;
                        if resync { Effect::Resync } else { Effect::None }
                    }
                    Msg::Event(e) => m.apply_event(e),
                    Msg::Org(Ok(all)) => m.set_workspaces(all),
                    Msg::Org(Err(e)) => {
                        m.notice = format!("cannot list workspaces: {e}");
                        Effect::None
                    }
                    Msg::One(id, w) => {
                        m.set_workspace(id, w.map(|w| *w));
                        Effect::None
                    }
                    Msg::Health(h) => {
                        m.set_liveness(h);
                        Effect::None
                    }
                    Msg::Activity(id, rows) => {
                        m.activity = Some((id, rows));
                        Effect::None
                    }
                    Msg::Notice(n) => {
                        m.notice = n;
                        Effect::None
                    }
                    Msg::ChatPiece(id, p) => {
                        m.chat_piece(id, p);
                        Effect::None
                    }
                    Msg::ChatDone(id, r) => {
                        m.chat_done(id, r);
                        Effect::None
                    }
                };
                if effect == Effect::Quit {
                    return Ok(());
                }
                carry_out(&c, &tx, effect);
            }
        }
    }
    .await;
    ratatui::restore();
    result
}

/// Starts what `effect` asks for; its outcome comes back as a message.
fn carry_out(c: &Client, tx: &UnboundedSender<Msg>, effect: Effect) {
    let (c, tx) = (c.clone(), tx.clone());
    match effect {
        Effect::None | Effect::Quit => {}
        Effect::Resync => {
            tokio::spawn(async move {
                let r = c.list_workspaces().await.map_err(|e| e.to_string());
                let _ = tx.send(Msg::Org(r));
            });
        }
        Effect::Fetch(id) => {
            tokio::spawn(async move {
                match c.get_workspace(id).await {
                    Ok(w) => {
                        let _ = tx.send(Msg::One(id, Some(Box::new(w))));
                    }
                    Err(e) if e.status() == Some(404) => {
                        let _ = tx.send(Msg::One(id, None));
                    }
                    Err(_) => {}
                }
            });
        }
        Effect::Detail(id) => {
            tokio::spawn(async move {
                if let Ok(rows) = c.activity(id, "limit=5").await {
                    let _ = tx.send(Msg::Activity(id, rows));
                }
            });
        }
        Effect::Act(action, id) => {
            tokio::spawn(async move {
                let path = format!("/workspaces/{id}");
                let r = match action {
                    Action::Restart => {
                        let body = serde_json::json!({});
                        c.request(Method::POST, &format!("{path}/restart"), Some(&body))
                            .await
                    }
                    Action::Pause => {
                        c.request(Method::POST, &format!("{path}/pause"), None)
                            .await
                    }
                    Action::Resume => {
                        c.request(Method::POST, &format!("{path}/resume"), None)
                            .await
                    }
                    Action::Delete => {
                        c.request(Method::DELETE, &format!("{path}?confirm=true"), None)
                            .await
                    }
                };
                let notice = match r {
                    Ok(r) if r.status < 300 => format!("{}: done", action.verb()),
                    Ok(r) => format!(
                        "{} refused: {}",
                        action.verb(),
                        molecule_client::ClientError::from_http(r.status, &r.body)
                    ),
                    Err(e) => format!("{} failed: {e}", action.verb()),
                };
                let _ = tx.send(Msg::Notice(notice));
            });
        }
        Effect::Send(id, text, mut conversation) => {
            tokio::spawn(async move {
                let pieces = tx.clone();
                let r = chat::send(&c, id, &text, &mut conversation, |p| {
                    let _ = pieces.send(Msg::ChatPiece(id, p));
                })
                .await
                .map(|state| (state, conversation))
                .map_err(|e| super::one_line(&e));
                let _ = tx.send(Msg::ChatDone(id, r));
            });
        }
    }
}

/// Reads the terminal on a thread of its own (crossterm's reader blocks).
fn spawn_keys(tx: UnboundedSender<Msg>) {
    std::thread::spawn(move || {
        while let Ok(ev) = term::read() {
            let msg = match ev {
                TermEvent::Key(k) if k.kind != KeyEventKind::Release => Msg::Key(k),
                TermEvent::Resize(..) => Msg::Redraw,
                _ => continue,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
}

/// The `/ws` feed, for as long as the dashboard runs: every (re)connect
/// reports `Live` (which re-reads the org, so nothing missed while away
/// stays wrong), every loss `Down`, then waits 1 s, 2 s, … up to 10 s.
async fn feed(c: Client, tx: UnboundedSender<Msg>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let err = match c.subscribe().await {
            Ok(mut stream) => {
                backoff = Duration::from_secs(1);
                if tx.send(Msg::Link(Link::Live)).is_err() {
                    return;
                }
                loop {
                    match stream.next().await {
                        Some(Ok(e)) => {
                            if tx.send(Msg::Event(e)).is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => break e.to_string(),
                        None => break "the platform closed the feed".to_string(),
                    }
                }
            }
            Err(e) => e.to_string(),
        };
        if tx.send(Msg::Link(Link::Down(err))).is_err() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// `/admin/liveness` now and every few seconds.
async fn health(c: Client, tx: UnboundedSender<Msg>) {
    loop {
        let h = c.liveness().await.map_err(|e| e.to_string());
        if tx.send(Msg::Health(h)).is_err() {
            return;
        }
        tokio::time::sleep(HEALTH_EVERY).await;
    }
}
