//! Drawing the dashboard: the org tree (left), the selected workspace's
//! detail or the chat (right, top), health (right, bottom), the events pane
//! and a status bar. Only the rows that fit are drawn, so a frame costs the
//! same with 1 000 workspaces as with 10.

use molecule_types::WorkspaceStatus;
use molecule_types::dto::Workspace;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use serde_json::Value;

use super::model::{ChatLine, Link, Mode, Model};

/// Height of the events pane, borders included.
const EVENTS_HEIGHT: u16 = 9;

/// The tree pane's inner height for a terminal of `area` (what Page Up/Down
/// moves by).
pub fn tree_page(area: Rect) -> usize {
    area.height.saturating_sub(EVENTS_HEIGHT + 1 + 2) as usize
}

pub fn draw(f: &mut Frame, m: &Model) {
    let [top, events, bar] = Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(EVENTS_HEIGHT),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let [tree, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    let [detail, health] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(right);
    draw_tree(f, m, tree);
    if m.mode == Mode::Chat && m.chat.is_some() {
        draw_chat(f, m, detail);
    } else {
        draw_detail(f, m, detail);
    }
    draw_health(f, m, health);
    draw_events(f, m, events);
    draw_bar(f, m, bar);
}

pub fn status_color(s: WorkspaceStatus) -> Color {
    match s {
        WorkspaceStatus::Online => Color::Green,
        WorkspaceStatus::Degraded => Color::Yellow,
        WorkspaceStatus::Offline | WorkspaceStatus::Failed => Color::Red,
        WorkspaceStatus::Provisioning => Color::Cyan,
        WorkspaceStatus::Paused | WorkspaceStatus::Removed => Color::DarkGray,
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn draw_tree(f: &mut Frame, m: &Model, area: Rect) {
    let title = if m.filter.is_empty() && m.mode != Mode::Filter {
        format!(" Org ({}) ", m.workspaces.len())
    } else {
        format!(
            " Org: {} of {} match /{}{} ",
            m.rows.len(),
            m.workspaces.len(),
            m.filter,
            if m.mode == Mode::Filter { "▏" } else { "" }
        )
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let height = inner.height as usize;
    if m.rows.is_empty() {
        let empty = if m.workspaces.is_empty() {
            "no workspaces yet (molecule ws create NAME)"
        } else {
            "nothing matches the filter (Esc clears it)"
        };
        f.render_widget(Paragraph::new(empty.dark_gray()), inner);
        return;
    }
    let at = m.selected_index().unwrap_or(0);
    let offset = if at < height { 0 } else { at + 1 - height };
    let width = inner.width as usize;
    let lines: Vec<Line> = m
        .rows
        .iter()
        .skip(offset)
        .take(height)
        .map(|(id, depth)| {
            let w = &m.workspaces[id];
            let fold = if !m.has_children(*id) {
                " "
            } else if m.collapsed.contains(id) {
                "▸"
            } else {
                "▾"
            };
            let indent = "  ".repeat(*depth);
            let name_w = 22usize.saturating_sub(indent.len()).max(6);
            let tasks = if w.active_tasks > 0 {
                format!("{:>2}", w.active_tasks)
            } else {
                "  ".into()
            };
            let rest = format!(
                " {:<12} {tasks} {}",
                w.status.as_str(),
                w.current_task.replace('\n', " ")
            );
            let head = format!("{indent}{fold} ");
            let name = format!("{:<name_w$}", cut(&w.name, name_w));
            let used = head.chars().count() + 2 + name.chars().count();
            let mut line = Line::from(vec![
                Span::raw(head),
                Span::styled("● ", Style::new().fg(status_color(w.status))),
                Span::raw(name),
                Span::styled(
                    cut(&rest, width.saturating_sub(used)),
                    Style::new().fg(status_color(w.status)),
                ),
            ]);
            if Some(*id) == m.selected {
                line = line.style(Style::new().add_modifier(Modifier::REVERSED));
            }
            line
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn field<'a>(name: &'a str, value: String) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{name:<10}"), Style::new().dark_gray()),
        Span::raw(value),
    ])
}

fn draw_detail(f: &mut Frame, m: &Model, area: Rect) {
    let block = Block::bordered().title(" Detail ");
    let Some(w) = m.selected_workspace() else {
        f.render_widget(Paragraph::new("").block(block), area);
        return;
    };
    let mut lines = vec![
        Line::from(w.name.clone().bold()),
        field("id", w.id.to_string()),
        field(
            "role",
            format!(
                "{} · tier {} · {}",
                w.role.as_deref().unwrap_or("-"),
                w.tier,
                w.runtime
            ),
        ),
        Line::from(vec![
            Span::styled(format!("{:<10}", "status"), Style::new().dark_gray()),
            Span::styled(
                w.status.as_str(),
                Style::new().fg(status_color(w.status)).bold(),
            ),
            Span::raw(match &w.status_reason {
                Some(r) if !r.is_empty() => format!(" — {r}"),
                _ => String::new(),
            }),
        ]),
    ];
    if !w.url.is_empty() {
        lines.push(field("url", w.url.clone()));
    }
    if let Some(p) = w.parent_id {
        let parent = m
            .workspaces
            .get(&p)
            .map_or(p.to_string(), |p| p.name.clone());
        lines.push(field("parent", parent));
    }
    lines.push(field(
        "tasks",
        match (w.active_tasks, w.current_task.as_str()) {
            (0, "") => "idle".into(),
            (n, "") => format!("{n} active"),
            (n, t) => format!("{n} active — {t}"),
        },
    ));
    if let Some(card) = &w.agent_card {
        lines.extend(card_lines(card));
    }
    if let Some(c) = &w.a2a_conformance {
        let failed = c["failed"].as_array().map_or(0, Vec::len);
        lines.push(field(
            "a2a",
            if failed == 0 {
                "conformance checks passed".into()
            } else {
                format!("{failed} conformance check(s) failed")
            },
        ));
    }
    match &m.activity {
        Some((id, rows)) if *id == w.id => {
            lines.push(Line::from("recent activity".dark_gray()));
            if rows.is_empty() {
                lines.push(Line::from("  none"));
            }
            for r in rows {
                lines.push(Line::from(activity_line(r)));
            }
        }
        _ => {}
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn card_lines(card: &Value) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if let Some(d) = card["description"].as_str().filter(|d| !d.is_empty()) {
        out.push(field("card", d.replace('\n', " ")));
    }
    let skills: Vec<&str> = card["skills"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str().or(s["id"].as_str()))
        .collect();
    if !skills.is_empty() {
        out.push(field("skills", skills.join(", ")));
    }
    out
}

fn activity_line(r: &Value) -> String {
    let at = r["created_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default();
    let what = [&r["activity_type"], &r["method"], &r["status"]]
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let summary = r["summary"].as_str().unwrap_or_default().replace('\n', " ");
    format!("  {at} {what} {summary}")
}

fn draw_chat(f: &mut Frame, m: &Model, area: Rect) {
    let Some(chat) = &m.chat else { return };
    let title = format!(
        " Chat with {}{} (Esc leaves) ",
        chat.name,
        if chat.busy { " — answering…" } else { "" }
    );
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = inner.width.max(1) as usize;
    let mut lines: Vec<Line> = Vec::new();
    for l in &chat.lines {
        let (who, text, style) = match l {
            ChatLine::You(t) => ("you", t, Style::new().cyan()),
            ChatLine::Agent(t) => (chat.name.as_str(), t, Style::new()),
            ChatLine::Note(t) => ("", t, Style::new().dark_gray()),
        };
        let prefix = if who.is_empty() {
            String::new()
        } else {
            format!("{who}: ")
        };
        for piece in wrap(&format!("{prefix}{text}"), width) {
            lines.push(Line::styled(piece, style));
        }
    }
    let room = (inner.height as usize).saturating_sub(1);
    let skip = lines.len().saturating_sub(room);
    let mut shown: Vec<Line> = lines.into_iter().skip(skip).collect();
    while shown.len() < room {
        shown.push(Line::raw(""));
    }
    let input = format!("> {}▏", chat.input);
    let tail: String = {
        let n = input.chars().count();
        input.chars().skip(n.saturating_sub(width)).collect()
    };
    shown.push(Line::styled(tail, Style::new().bold()));
    f.render_widget(Paragraph::new(shown), inner);
}

/// `text` in lines of at most `width` characters (hard breaks kept).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            out.push(String::new());
        }
        for chunk in chars.chunks(width.max(1)) {
            out.push(chunk.iter().collect());
        }
    }
    out
}

fn draw_health(f: &mut Frame, m: &Model, area: Rect) {
    let mut lines = Vec::new();
    let counts = m.counts();
    let n = m.workspaces.len();
    let mut spans = vec![Span::raw(format!(
        "{n} workspace{}: ",
        if n == 1 { "" } else { "s" }
    ))];
    for (i, (s, n)) in counts.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" · "));
        }
        spans.push(Span::styled(
            format!("{n} {s}"),
            Style::new().fg(status_color(*s)),
        ));
    }
    lines.push(Line::from(spans));
    lines.push(match &m.breaker {
        None => field("breaker", "unknown".into()),
        Some(b) if b.open => Line::from(vec![
            Span::styled(format!("{:<10}", "breaker"), Style::new().dark_gray()),
            Span::styled("OPEN", Style::new().red().bold()),
            Span::raw(format!(" — no automatic restarts {}", b.reason)),
        ]),
        Some(_) => field("breaker", "closed (restarts allowed)".into()),
    });
    lines.push(match &m.link {
        Link::Live => field("live feed", "connected".into()),
        Link::Connecting => field("live feed", "connecting…".into()),
        Link::Down(e) => Line::from(vec![
            Span::styled(format!("{:<10}", "live feed"), Style::new().dark_gray()),
            Span::styled(format!("reconnecting ({e})"), Style::new().yellow()),
        ]),
    });
    if let Some(e) = &m.health_error {
        lines.push(Line::styled(
            format!("liveness: {e}"),
            Style::new().yellow(),
        ));
    }
    if let Some(l) = &m.liveness {
        // Background tasks packed several to a line: a mark, the name and
        // the last tick; a stale or panicking one in red, first.
        let mut tasks: Vec<(bool, String)> = l
            .subsystems
            .iter()
            .map(|(name, s)| {
                let ago = s.seconds_ago.map_or("never".into(), |a| format!("{a:.0}s"));
                let bad = s.stale || s.panics > 0;
                let mark = if bad { "✗" } else { "✓" };
                let extra = if s.stale { " STALE" } else { "" };
                (bad, format!("{mark} {name} {ago}{extra}"))
            })
            .collect();
        tasks.sort_by_key(|(bad, _)| !bad);
        let width = area.width.saturating_sub(2) as usize;
        let mut spans: Vec<Span> = vec![Span::styled("tasks     ", Style::new().dark_gray())];
        let mut used = 10;
        for (bad, t) in tasks {
            let n = t.chars().count() + 2;
            if used + n > width && used > 10 {
                lines.push(Line::from(std::mem::take(&mut spans)));
                spans.push(Span::raw(" ".repeat(10)));
                used = 10;
            }
            let style = if bad {
                Style::new().red()
            } else {
                Style::new()
            };
            spans.push(Span::styled(t, style));
            spans.push(Span::raw("  "));
            used += n;
        }
        lines.push(Line::from(spans));
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Health ")),
        area,
    );
}

fn draw_events(f: &mut Frame, m: &Model, area: Rect) {
    let block = Block::bordered().title(format!(" Events ({}) ", m.events.len()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let lines: Vec<Line> = m
        .events
        .iter()
        .take(inner.height as usize)
        .map(|e| {
            let who = e
                .workspace_id
                .parse()
                .ok()
                .and_then(|id| m.workspaces.get(&id))
                .map_or_else(|| short_id(&e.workspace_id), |w: &Workspace| w.name.clone());
            let line = format!(
                "{}  {:<27} {:<16} {}",
                e.timestamp.format("%H:%M:%S"),
                e.event,
                cut(&who, 16),
                summary(&e.payload)
            );
            Line::raw(cut(&line, inner.width as usize))
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// A payload in a few words: its reason or error, else its fields.
fn summary(p: &Value) -> String {
    for k in [
        "reason",
        "error",
        "current_task",
        "decision",
        "summary",
        "status",
    ] {
        if let Some(s) = p[k].as_str().filter(|s| !s.is_empty()) {
            return s.replace('\n', " ");
        }
    }
    // Else its short fields as k=v; nested documents (a card) left out.
    match p {
        Value::Object(o) => o
            .iter()
            .filter(|(_, v)| !v.is_object() && !v.is_array())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn draw_bar(f: &mut Frame, m: &Model, area: Rect) {
    let line = match &m.mode {
        Mode::Confirm(..) => {
            Line::styled(format!(" {}", m.notice), Style::new().black().on_yellow())
        }
        Mode::Filter => Line::raw(" type to filter · Enter keeps it · Esc clears it"),
        Mode::Chat => Line::raw(" type a message · Enter sends · Esc back to the org"),
        Mode::Normal => {
            let keys = " q quit · ↑↓ move · space fold · / filter · enter chat · r restart · p pause · u resume · d delete · R reload";
            if m.notice.is_empty() {
                Line::raw(keys)
            } else {
                Line::from(vec![
                    Span::styled(format!(" {} ", m.notice), Style::new().bold()),
                    Span::raw(keys),
                ])
            }
        }
    };
    f.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
