//! The dashboard's state and everything that changes it: the org from
//! `GET /workspaces`, the live feed from `/ws`, health from
//! `/admin/liveness`, and the operator's keys. No I/O here: each change
//! returns the [`Effect`] the run loop (`mod.rs`) must carry out, so the
//! whole behaviour is testable with scripted events and keys.

use std::collections::{HashMap, HashSet, VecDeque};

use molecule_types::dto::{Liveness, Workspace};
use molecule_types::{EventEnvelope, WorkspaceStatus};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;
use uuid::Uuid;

use crate::cli::chat::{Conversation, Piece};

/// Events kept for the events pane.
pub const MAX_EVENTS: usize = 200;

/// The `/ws` connection as the operator should see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    Connecting,
    Live,
    /// Lost; reconnecting. The error that ended it.
    Down(String),
}

/// An operator action on one workspace; each asks for confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Restart,
    Pause,
    Resume,
    Delete,
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Restart => "restart",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Delete => "delete",
        }
    }
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Waiting for `y` to carry out an action.
    Confirm(Action, Uuid),
    /// Typing a filter after `/`.
    Filter,
    /// Typing into the chat pane.
    Chat,
}

/// One line of the chat pane.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatLine {
    You(String),
    Agent(String),
    Note(String),
}

/// The chat pane: a conversation with one workspace.
#[derive(Debug, Clone)]
pub struct Chat {
    pub target: Uuid,
    pub name: String,
    pub lines: Vec<ChatLine>,
    pub input: String,
    pub busy: bool,
    pub conversation: Conversation,
}

/// What the run loop must do after a change.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    None,
    Quit,
    /// Re-read the whole org (start, reconnect, `RESYNC`).
    Resync,
    /// Re-read one workspace (its status reason after an event, or one not
    /// seen before).
    Fetch(Uuid),
    /// Read the selected workspace's recent activity for the detail pane.
    Detail(Uuid),
    Act(Action, Uuid),
    /// Send the chat input to the workspace.
    Send(Uuid, String, Conversation),
}

/// The fleet breaker as last seen (liveness or a breaker event).
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    pub open: bool,
    pub reason: String,
}

#[derive(Debug)]
pub struct Model {
    pub workspaces: HashMap<Uuid, Workspace>,
    /// The visible tree in display order: id and depth.
    pub rows: Vec<(Uuid, usize)>,
    pub collapsed: HashSet<Uuid>,
    pub selected: Option<Uuid>,
    pub events: VecDeque<EventEnvelope>,
    pub liveness: Option<Liveness>,
    pub health_error: Option<String>,
    pub breaker: Option<Breaker>,
    pub link: Link,
    pub mode: Mode,
    pub filter: String,
    /// The last action's outcome or a hint, shown in the status bar.
    pub notice: String,
    /// The selected workspace's recent activity rows.
    pub activity: Option<(Uuid, Vec<Value>)>,
    pub chat: Option<Chat>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            workspaces: HashMap::new(),
            rows: Vec::new(),
            collapsed: HashSet::new(),
            selected: None,
            events: VecDeque::new(),
            liveness: None,
            health_error: None,
            breaker: None,
            link: Link::Connecting,
            mode: Mode::Normal,
            filter: String::new(),
            notice: String::new(),
            activity: None,
            chat: None,
        }
    }
}

impl Model {
    /// The whole org, as `GET /workspaces` answered.
    pub fn set_workspaces(&mut self, all: Vec<Workspace>) -> Effect {
        self.workspaces = all.into_iter().map(|w| (w.id, w)).collect();
        self.rebuild();
        self.selection_changed_effect()
    }

    /// One workspace re-read; `None` when it is gone.
    pub fn set_workspace(&mut self, id: Uuid, ws: Option<Workspace>) {
        match ws {
            Some(w) => {
                self.workspaces.insert(id, w);
            }
            None => {
                self.workspaces.remove(&id);
            }
        }
        self.rebuild();
    }

    pub fn set_liveness(&mut self, l: Result<Liveness, String>) {
        match l {
            Ok(l) => {
                if let Some(f) = &l.fleet {
                    let reason = match &self.breaker {
                        Some(b) if b.open == f.breaker_open => b.reason.clone(),
                        _ => String::new(),
                    };
                    self.breaker = Some(Breaker {
                        open: f.breaker_open,
                        reason,
                    });
                }
                self.liveness = Some(l);
                self.health_error = None;
            }
            Err(e) => self.health_error = Some(e),
        }
    }

    /// A frame from `/ws`.
    pub fn apply_event(&mut self, e: EventEnvelope) -> Effect {
        let effect = self.apply_event_inner(&e);
        self.events.push_front(e);
        self.events.truncate(MAX_EVENTS);
        effect
    }

    fn apply_event_inner(&mut self, e: &EventEnvelope) -> Effect {
        let p = &e.payload;
        match e.event.as_str() {
            "RESYNC" => return Effect::Resync,
            "FLEET_BREAKER_TRIPPED" | "FLEET_BREAKER_RESET" => {
                self.breaker = Some(Breaker {
                    open: e.event == "FLEET_BREAKER_TRIPPED",
                    reason: p["reason"].as_str().unwrap_or_default().to_string(),
                });
                return Effect::None;
            }
            _ => {}
        }
        let Ok(id) = e.workspace_id.parse::<Uuid>() else {
            return Effect::None;
        };
        let status = match e.event.as_str() {
            "WORKSPACE_PROVISIONING" => Some(WorkspaceStatus::Provisioning),
            "WORKSPACE_ONLINE" => Some(WorkspaceStatus::Online),
            "WORKSPACE_OFFLINE" => Some(WorkspaceStatus::Offline),
            "WORKSPACE_DEGRADED" => Some(WorkspaceStatus::Degraded),
            "WORKSPACE_PAUSED" => Some(WorkspaceStatus::Paused),
            "WORKSPACE_PROVISION_FAILED" => Some(WorkspaceStatus::Failed),
            "WORKSPACE_REMOVED" => {
                self.workspaces.remove(&id);
                self.rebuild();
                return Effect::None;
            }
            _ => None,
        };
        let Some(ws) = self.workspaces.get_mut(&id) else {
            // A workspace this view has not seen (created elsewhere).
            return if status.is_some() {
                Effect::Fetch(id)
            } else {
                Effect::None
            };
        };
        match e.event.as_str() {
            "TASK_UPDATED" => {
                ws.current_task = p["current_task"].as_str().unwrap_or_default().to_string();
                if let Some(n) = p["active_tasks"].as_i64() {
                    ws.active_tasks = n as i32;
                }
                Effect::None
            }
            "AGENT_CARD_UPDATED" => {
                ws.agent_card = Some(p["agent_card"].clone());
                Effect::None
            }
            _ => match status {
                Some(s) => {
                    ws.status = s;
                    ws.status_reason = p["reason"]
                        .as_str()
                        .or(p["error"].as_str())
                        .map(str::to_owned)
                        .filter(|_| s != WorkspaceStatus::Online);
                    // The event carries the status; the row carries why.
                    Effect::Fetch(id)
                }
                None => Effect::None,
            },
        }
    }

    /// The tree in display order: roots by name, children under their
    /// parent; a filter shows the matching workspaces flat.
    pub fn rebuild(&mut self) {
        self.rows.clear();
        if !self.filter.is_empty() {
            let f = self.filter.to_lowercase();
            let mut hits: Vec<&Workspace> = self
                .workspaces
                .values()
                .filter(|w| {
                    w.name.to_lowercase().contains(&f)
                        || w.role
                            .as_deref()
                            .unwrap_or_default()
                            .to_lowercase()
                            .contains(&f)
                        || w.status.as_str().contains(&f)
                })
                .collect();
            hits.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            self.rows = hits.into_iter().map(|w| (w.id, 0)).collect();
        } else {
            let mut children: HashMap<Option<Uuid>, Vec<&Workspace>> = HashMap::new();
            for w in self.workspaces.values() {
                let parent = w.parent_id.filter(|p| self.workspaces.contains_key(p));
                children.entry(parent).or_default().push(w);
            }
            for list in children.values_mut() {
                list.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            }
            let mut stack: Vec<(Uuid, usize)> = children
                .get(&None)
                .map(|roots| roots.iter().rev().map(|w| (w.id, 0)).collect())
                .unwrap_or_default();
            while let Some((id, depth)) = stack.pop() {
                self.rows.push((id, depth));
                if self.collapsed.contains(&id) {
                    continue;
                }
                if let Some(kids) = children.get(&Some(id)) {
                    stack.extend(kids.iter().rev().map(|w| (w.id, depth + 1)));
                }
            }
        }
        if self
            .selected
            .is_none_or(|s| !self.rows.iter().any(|(id, _)| *id == s))
        {
            self.selected = self.rows.first().map(|(id, _)| *id);
        }
    }

    /// The selected row's index.
    pub fn selected_index(&self) -> Option<usize> {
        let s = self.selected?;
        self.rows.iter().position(|(id, _)| *id == s)
    }

    pub fn selected_workspace(&self) -> Option<&Workspace> {
        self.workspaces.get(&self.selected?)
    }

    /// Whether `id` has children (collapsed or not).
    pub fn has_children(&self, id: Uuid) -> bool {
        self.workspaces.values().any(|w| w.parent_id == Some(id))
    }

    fn select_index(&mut self, i: usize) -> Effect {
        let before = self.selected;
        self.selected = self.rows.get(i).map(|(id, _)| *id);
        if self.selected != before {
            self.selection_changed_effect()
        } else {
            Effect::None
        }
    }

    fn selection_changed_effect(&mut self) -> Effect {
        match self.selected {
            Some(id) if self.activity.as_ref().is_none_or(|(a, _)| *a != id) => {
                self.activity = None;
                Effect::Detail(id)
            }
            _ => Effect::None,
        }
    }

    /// A key press; `page` is the tree pane's height in rows.
    pub fn on_key(&mut self, key: KeyEvent, page: usize) -> Effect {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Effect::Quit;
        }
        match self.mode.clone() {
            Mode::Confirm(action, id) => {
                self.mode = Mode::Normal;
                if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    self.notice = format!("{}: sent…", action.verb());
                    Effect::Act(action, id)
                } else {
                    self.notice = format!("{} cancelled", action.verb());
                    Effect::None
                }
            }
            Mode::Filter => {
                match key.code {
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) => self.filter.push(c),
                    _ => {}
                }
                self.rebuild();
                self.selection_changed_effect()
            }
            Mode::Chat => self.chat_key(key),
            Mode::Normal => self.normal_key(key, page.max(1)),
        }
    }

    fn normal_key(&mut self, key: KeyEvent, page: usize) -> Effect {
        let at = self.selected_index().unwrap_or(0);
        let last = self.rows.len().saturating_sub(1);
        match key.code {
            KeyCode::Char('q') => Effect::Quit,
            KeyCode::Down | KeyCode::Char('j') => self.select_index((at + 1).min(last)),
            KeyCode::Up | KeyCode::Char('k') => self.select_index(at.saturating_sub(1)),
            KeyCode::PageDown => self.select_index((at + page).min(last)),
            KeyCode::PageUp => self.select_index(at.saturating_sub(page)),
            KeyCode::Home | KeyCode::Char('g') => self.select_index(0),
            KeyCode::End | KeyCode::Char('G') => self.select_index(last),
            KeyCode::Char(' ') => {
                if let Some(id) = self.selected.filter(|id| self.has_children(*id)) {
                    if !self.collapsed.remove(&id) {
                        self.collapsed.insert(id);
                    }
                    self.rebuild();
                }
                Effect::None
            }
            KeyCode::Char('/') => {
                self.mode = Mode::Filter;
                Effect::None
            }
            KeyCode::Esc => {
                self.filter.clear();
                self.rebuild();
                Effect::None
            }
            KeyCode::F(5) | KeyCode::Char('R') => {
                self.notice = "reloading…".into();
                Effect::Resync
            }
            KeyCode::Enter | KeyCode::Char('c') => {
                let Some(w) = self.selected_workspace() else {
                    return Effect::None;
                };
                if self.chat.as_ref().is_none_or(|c| c.target != w.id) {
                    self.chat = Some(Chat {
                        target: w.id,
                        name: w.name.clone(),
                        lines: Vec::new(),
                        input: String::new(),
                        busy: false,
                        conversation: Conversation::default(),
                    });
                }
                self.mode = Mode::Chat;
                Effect::None
            }
            KeyCode::Char(c @ ('r' | 'p' | 'u' | 'd')) => {
                let action = match c {
                    'r' => Action::Restart,
                    'p' => Action::Pause,
                    'u' => Action::Resume,
                    _ => Action::Delete,
                };
                let Some((id, name)) = self.selected_workspace().map(|w| (w.id, w.name.clone()))
                else {
                    return Effect::None;
                };
                let extra = if action == Action::Delete && self.has_children(id) {
                    " and every child of it"
                } else {
                    ""
                };
                self.notice = format!("{} {name}{extra}? y/N", action.verb());
                self.mode = Mode::Confirm(action, id);
                Effect::None
            }
            _ => Effect::None,
        }
    }

    fn chat_key(&mut self, key: KeyEvent) -> Effect {
        let Some(chat) = self.chat.as_mut() else {
            self.mode = Mode::Normal;
            return Effect::None;
        };
        match key.code {
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Backspace => {
                chat.input.pop();
            }
            KeyCode::Enter if !chat.busy && !chat.input.trim().is_empty() => {
                let text = std::mem::take(&mut chat.input);
                chat.lines.push(ChatLine::You(text.clone()));
                chat.lines.push(ChatLine::Agent(String::new()));
                chat.busy = true;
                return Effect::Send(chat.target, text, chat.conversation.clone());
            }
            KeyCode::Char(c) => chat.input.push(c),
            _ => {}
        }
        Effect::None
    }

    /// A piece of the agent's answer in the chat pane.
    pub fn chat_piece(&mut self, target: Uuid, piece: Piece) {
        let Some(chat) = self.chat.as_mut().filter(|c| c.target == target) else {
            return;
        };
        match piece {
            Piece::Text(t) => match chat.lines.last_mut() {
                Some(ChatLine::Agent(s)) => s.push_str(&t),
                _ => chat.lines.push(ChatLine::Agent(t)),
            },
            Piece::Question(q) => chat.lines.push(ChatLine::Agent(q)),
            Piece::State(_) => {}
        }
    }

    /// The chat turn ended.
    pub fn chat_done(&mut self, target: Uuid, result: Result<(String, Conversation), String>) {
        let Some(chat) = self.chat.as_mut().filter(|c| c.target == target) else {
            return;
        };
        chat.busy = false;
        if matches!(chat.lines.last(), Some(ChatLine::Agent(s)) if s.is_empty()) {
            chat.lines.pop();
        }
        match result {
            Ok((state, conversation)) => {
                chat.conversation = conversation;
                if state != "completed" {
                    chat.lines.push(ChatLine::Note(format!("({state})")));
                }
            }
            Err(e) => chat.lines.push(ChatLine::Note(format!("error: {e}"))),
        }
    }

    /// Workspaces per status, in the platform's order, zeros left out.
    pub fn counts(&self) -> Vec<(WorkspaceStatus, usize)> {
        WorkspaceStatus::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    self.workspaces.values().filter(|w| w.status == *s).count(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
pub(crate) mod tests;
