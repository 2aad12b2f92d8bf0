//! How Rust values map onto SQLite storage classes, and the decoding of
//! rows back into [`crate::rows`] types.
//!
//! UUIDs are lowercase hyphenated TEXT (sqlx would otherwise bind a 16-byte
//! BLOB), JSON is TEXT, and timestamps are TEXT in one fixed-width UTC format
//! ([`TS_FORMAT`]) so that string comparison and `ORDER BY` follow time. The
//! encoding is written here rather than taken from sqlx's chrono support so
//! that the on-disk format is ours and cannot drift with a dependency.

use crate::{Result, StoreError, WorkspaceRow};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

/// Microsecond precision, always six fraction digits, always `Z`.
pub(super) const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// The columns every workspace read returns, joined with the canvas layout.
/// A macro (not a `const`) so queries can `concat!` it into a `&'static str`.
macro_rules! select_workspace {
    () => {
        "SELECT w.id, w.name, w.role, COALESCE(w.tier, 1) AS tier, w.status, w.status_reason, \
         w.source_bundle_id, w.agent_card, w.a2a_conformance, w.url, w.parent_id, w.last_heartbeat_at, \
         COALESCE(w.last_error_rate, 0.0) AS last_error_rate, w.last_sample_error, \
         COALESCE(w.active_tasks, 0) AS active_tasks, \
         COALESCE(w.uptime_seconds, 0) AS uptime_seconds, w.current_task, \
         w.awareness_namespace, COALESCE(w.runtime, 'langgraph') AS runtime, w.workspace_dir, \
         w.workspace_access, w.created_at, w.updated_at, \
         COALESCE(cl.x, 0.0) AS x, COALESCE(cl.y, 0.0) AS y, \
         COALESCE(cl.collapsed, 0) AS collapsed \
         FROM workspaces w LEFT JOIN canvas_layouts cl ON cl.workspace_id = w.id "
    };
}
pub(super) use select_workspace;

pub(super) fn ts(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    // `TS_FORMAT`, written out digit by digit: the activity writer formats
    // one per row, and both chrono's `format` and `write!` with padding
    // cost ~20x more.
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format(TS_FORMAT).to_string();
    }
    fn put(out: &mut [u8], mut v: u32) {
        for digit in out.iter_mut().rev() {
            *digit = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    put(&mut b[0..4], year as u32);
    put(&mut b[5..7], t.month());
    put(&mut b[8..10], t.day());
    put(&mut b[11..13], t.hour());
    put(&mut b[14..16], t.minute());
    // chrono keeps a leap second as :59 with nanoseconds past 1e9; `%S%.6f`
    // prints it as :60.
    put(&mut b[17..19], t.second() + t.nanosecond() / 1_000_000_000);
    put(&mut b[20..26], t.nanosecond() % 1_000_000_000 / 1_000);
    String::from_utf8_lossy(&b).into_owned()
}

fn parse_ts(column: &str, s: &str) -> Result<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.fZ")
        .map(|n| n.and_utc())
        // Tolerate other RFC 3339 spellings written by hand or by tools.
        .or_else(|_| DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)))
        .map_err(|_| StoreError::Corrupt(format!("{column}: bad timestamp {s:?}")))
}

/// A JSON array of strings, for `IN (SELECT value FROM json_each(?))`: one
/// static statement for any number of ids or statuses.
pub(super) fn json_list<I, T>(items: I) -> String
where
    I: IntoIterator<Item = T>,
    T: ToString,
{
    Value::Array(
        items
            .into_iter()
            .map(|i| Value::String(i.to_string()))
            .collect(),
    )
    .to_string()
}

pub(super) fn get_ts(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>> {
    let s: String = row.try_get(column)?;
    parse_ts(column, &s)
}

pub(super) fn get_opt_ts(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>> {
    let s: Option<String> = row.try_get(column)?;
    s.map(|s| parse_ts(column, &s)).transpose()
}

fn parse_uuid(column: &str, s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("{column}: bad uuid {s:?}")))
}

pub(super) fn get_uuid(row: &SqliteRow, column: &str) -> Result<Uuid> {
    let s: String = row.try_get(column)?;
    parse_uuid(column, &s)
}

pub(super) fn get_opt_uuid(row: &SqliteRow, column: &str) -> Result<Option<Uuid>> {
    let s: Option<String> = row.try_get(column)?;
    s.map(|s| parse_uuid(column, &s)).transpose()
}

pub(super) fn get_opt_json(row: &SqliteRow, column: &str) -> Result<Option<Value>> {
    let s: Option<String> = row.try_get(column)?;
    s.map(|s| {
        serde_json::from_str(&s)
            .map_err(|e| StoreError::Corrupt(format!("{column}: bad json: {e}")))
    })
    .transpose()
}

pub(super) fn workspace_row(r: &SqliteRow) -> Result<WorkspaceRow> {
    Ok(WorkspaceRow {
        id: get_uuid(r, "id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        tier: r.try_get("tier")?,
        status: crate::word(r.try_get::<&str, _>("status")?)?,
        status_reason: r.try_get("status_reason")?,
        source_bundle_id: r.try_get("source_bundle_id")?,
        agent_card: get_opt_json(r, "agent_card")?,
        a2a_conformance: get_opt_json(r, "a2a_conformance")?,
        url: r.try_get("url")?,
        parent_id: get_opt_uuid(r, "parent_id")?,
        last_heartbeat_at: get_opt_ts(r, "last_heartbeat_at")?,
        last_error_rate: r.try_get("last_error_rate")?,
        last_sample_error: r.try_get("last_sample_error")?,
        active_tasks: r.try_get("active_tasks")?,
        uptime_seconds: r.try_get("uptime_seconds")?,
        current_task: r.try_get("current_task")?,
        awareness_namespace: r.try_get("awareness_namespace")?,
        runtime: r.try_get::<String, _>("runtime")?.into(),
        workspace_dir: r.try_get("workspace_dir")?,
        workspace_access: r.try_get("workspace_access")?,
        created_at: get_ts(r, "created_at")?,
        updated_at: get_ts(r, "updated_at")?,
        x: r.try_get("x")?,
        y: r.try_get("y")?,
        collapsed: r.try_get("collapsed")?,
    })
}

pub(super) fn workspace_rows(rows: &[SqliteRow]) -> Result<Vec<WorkspaceRow>> {
    rows.iter().map(workspace_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_are_fixed_width_and_round_trip() {
        let t =
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::microseconds(7);
        let s = ts(t);
        assert_eq!(s, "2026-01-02T03:04:05.000007Z");
        assert_eq!(parse_ts("c", &s).unwrap(), t);
        // Whole seconds keep the six fraction digits, so text order = time order.
        let whole = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 6).unwrap();
        assert_eq!(ts(whole), "2026-01-02T03:04:06.000000Z");
        assert!(ts(t) < ts(whole));
    }

    #[test]
    fn the_written_out_format_is_ts_format() {
        let base = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_250_000_000)
            .unwrap()
            .and_utc();
        for t in [
            base,
            base + chrono::Duration::nanoseconds(999_999_999),
            base + chrono::Duration::days(365 * 8000),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            leap,
        ]
        .into_iter()
        // And a spread of ordinary instants, 0.7 s ... 700 years apart.
        .chain((0..2000i64).map(|i| {
            base + chrono::Duration::nanoseconds(
                (i * i * i)
                    .wrapping_mul(2_718_281_829)
                    .rem_euclid(1_000_000_000_000),
            ) - chrono::Duration::days(i * 127)
        })) {
            assert_eq!(ts(t), t.format(TS_FORMAT).to_string(), "{t:?}");
        }
    }

    #[test]
    fn column_default_format_parses() {
        let t = parse_ts("c", "2026-11-28T16:45:13.173000Z").unwrap();
        assert_eq!(t.timestamp_subsec_micros(), 173_000);
        assert!(parse_ts("c", "yesterday").is_err());
    }
}
