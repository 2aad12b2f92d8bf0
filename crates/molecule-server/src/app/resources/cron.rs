//! The cron dialect of the scheduler (robfig/cron v3 "standard" parser, as
//! subsystems.md §4 describes it): exactly five fields `min hour dom month
//! dow`, each a comma list of `*`, `?` (day fields), `a`, `a-b`, with an
//! optional `/step`; month and weekday names (case-insensitive); an optional
//! `TZ=Zone` / `CRON_TZ=Zone` prefix that overrides the schedule's zone. No
//! `@` descriptors, no seconds, no `L`/`W`/`#`.
//!
//! Written here rather than taken from a crate because the common crates
//! accept a wider dialect (seconds, descriptors, `L`) or combine day fields
//! differently; the dialect is small and fully table-tested below. Time zone
//! data comes from `chrono-tz`.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// A parsed expression and the zone it is evaluated in.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSchedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Either day field was `*`/`?` (without a step > 1): then both day
    /// fields must match; otherwise either may (robfig's "star bit").
    day_star: bool,
    zone: Tz,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("invalid timezone: {0}")]
    Timezone(String),
    #[error("invalid cron expression: {0}")]
    Expression(String),
}

/// Parse an IANA zone name (`UTC` included).
pub fn parse_zone(name: &str) -> Result<Tz, CronError> {
    name.parse::<Tz>()
        .map_err(|_| CronError::Timezone(name.to_string()))
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Index of `names[0]`.
    names_base: u32,
    question: bool,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        names_base: 0,
        question: false,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        names_base: 0,
        question: false,
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
        names_base: 0,
        question: true,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        names_base: 1,
        question: false,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 6,
        names: &DAYS,
        names_base: 0,
        question: true,
    },
];

fn err(msg: String) -> CronError {
    CronError::Expression(msg)
}

fn value(f: &Field, s: &str) -> Result<u32, CronError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = f.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + f.names_base);
    }
    let v: u32 = s
        .parse()
        .map_err(|_| err(format!("{}: {s:?} is not a number", f.name)))?;
    if v < f.min || v > f.max {
        return Err(err(format!(
            "{}: {v} is out of range {}-{}",
            f.name, f.min, f.max
        )));
    }
    Ok(v)
}

/// One field: the bit set and whether it was a bare star.
fn field(f: &Field, expr: &str) -> Result<(u64, bool), CronError> {
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| err(format!("{}: bad step {s:?}", f.name)))?;
                if step == 0 {
                    return Err(err(format!("{}: step must be positive", f.name)));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (lo, hi, is_star) = if range == "*" || (range == "?" && f.question) {
            (f.min, f.max, true)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(f, a)?, value(f, b)?, false)
        } else {
            let v = value(f, range)?;
            // `a/step` runs from a to the field's maximum.
            (v, if step.is_some() { f.max } else { v }, false)
        };
        if lo > hi {
            return Err(err(format!("{}: range {lo}-{hi} is backwards", f.name)));
        }
        let step = step.unwrap_or(1);
        if is_star && step == 1 {
            star = true;
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

impl CronSchedule {
    /// Parse `expr`, evaluated in `default_zone` unless it has a
    /// `TZ=`/`CRON_TZ=` prefix.
    pub fn parse(expr: &str, default_zone: &str) -> Result<Self, CronError> {
        let mut expr = expr.trim();
        let mut zone_name = default_zone.to_string();
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(rest) = expr.strip_prefix(prefix) {
                let (zone, rest) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| err("missing fields after the time zone".into()))?;
                zone_name = zone.to_string();
                expr = rest.trim();
                break;
            }
        }
        let zone = parse_zone(&zone_name)?;
        if expr.starts_with('@') {
            return Err(err(format!(
                "descriptors such as {expr:?} are not supported"
            )));
        }
        let parts: Vec<&str> = expr.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(err(format!(
                "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}",
                parts.len()
            )));
        }
        let mut bits = [0u64; 5];
        let mut stars = [false; 5];
        for (i, f) in FIELDS.iter().enumerate() {
            (bits[i], stars[i]) = field(f, parts[i])?;
        }
        Ok(Self {
            minute: bits[0],
            hour: bits[1],
            dom: bits[2],
            month: bits[3],
            dow: bits[4],
            day_star: stars[2] || stars[4],
            zone,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom = self.dom & (1 << d.day()) != 0;
        let dow = self.dow & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first activation strictly after `after`, or `None` when there is
    /// none within five years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone).naive_local();
        let mut t = local.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = t.year() + 5;
        while t.year() <= limit {
            if self.month & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.day_matches(t.date()) {
                t = (t.date() + Duration::days(1)).and_hms_opt(0, 0, 0)?;
                continue;
            }
            if self.hour & (1 << t.hour()) == 0 {
                t = start_of_hour(t)? + Duration::hours(1);
                continue;
            }
            if self.minute & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            // Local wall time → instant. In a DST gap the time does not
            // exist and is skipped; in an overlap the first instant counts.
            let instant = match self.zone.from_local_datetime(&t) {
                LocalResult::Single(x) => Some(x),
                LocalResult::Ambiguous(a, b) => {
                    Some(if a.with_timezone(&Utc) > after { a } else { b })
                }
                LocalResult::None => None,
            };
            if let Some(x) = instant.map(|x| x.with_timezone(&Utc))
                && x > after
            {
                return Some(x);
            }
            t += Duration::minutes(1);
        }
        None
    }
}

fn start_of_hour(t: NaiveDateTime) -> Option<NaiveDateTime> {
    t.with_minute(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, zone: &str, after: &str) -> String {
        CronSchedule::parse(expr, zone)
            .unwrap()
            .next_after(utc(after))
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "none".into())
    }

    #[test]
    fn next_activation_table() {
        let cases = [
            (
                "* * * * *",
                "UTC",
                "2026-01-01T10:00:30Z",
                "2026-01-01T10:01:00+00:00",
            ),
            (
                "0 9 * * *",
                "UTC",
                "2026-01-01T09:00:00Z",
                "2026-01-02T09:00:00+00:00",
            ),
            (
                "0 9 * * *",
                "UTC",
                "2026-01-01T08:59:59Z",
                "2026-01-01T09:00:00+00:00",
            ),
            (
                "*/15 * * * *",
                "UTC",
                "2026-01-01T10:16:00Z",
                "2026-01-01T10:30:00+00:00",
            ),
            (
                "5/20 * * * *",
                "UTC",
                "2026-01-01T10:26:00Z",
                "2026-01-01T10:45:00+00:00",
            ),
            (
                "0 0 1 jan *",
                "UTC",
                "2026-03-01T00:00:00Z",
                "2027-01-01T00:00:00+00:00",
            ),
            (
                "0 12 * * MON-FRI",
                "UTC",
                "2026-01-02T13:00:00Z",
                "2026-01-05T12:00:00+00:00",
            ),
            (
                "0 0 ? * sun",
                "UTC",
                "2026-01-01T00:00:00Z",
                "2026-01-04T00:00:00+00:00",
            ),
            // Both day fields restricted: either matches (the 1st, or a Monday).
            (
                "0 0 1 * 1",
                "UTC",
                "2026-01-01T00:00:00Z",
                "2026-01-05T00:00:00+00:00",
            ),
            // dom restricted, dow star: only the 13th.
            (
                "0 0 13 * *",
                "UTC",
                "2026-01-01T00:00:00Z",
                "2026-01-13T00:00:00+00:00",
            ),
            // In the schedule's zone: 09:00 in New York is 14:00 UTC in winter.
            (
                "0 9 * * *",
                "America/New_York",
                "2026-01-01T00:00:00Z",
                "2026-01-01T14:00:00+00:00",
            ),
            (
                "CRON_TZ=Asia/Tokyo 0 9 * * *",
                "UTC",
                "2026-01-01T00:00:00Z",
                "2026-01-02T00:00:00+00:00",
            ),
            (
                "TZ=Europe/Berlin 30 1 * * *",
                "UTC",
                "2026-06-01T00:00:00Z",
                "2026-06-01T23:30:00+00:00",
            ),
            // DST overlap (01:30 happens twice on 2026-11-01 in New York): the
            // first one fires and the repeat does not (a daily job runs once).
            (
                "30 1 * * *",
                "America/New_York",
                "2026-11-01T04:00:00Z",
                "2026-11-01T05:30:00+00:00",
            ),
            (
                "30 1 * * *",
                "America/New_York",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:30:00+00:00",
            ),
            // DST gap (02:30 does not exist on 2026-03-08 in New York): skipped.
            (
                "30 2 * * *",
                "America/New_York",
                "2026-03-08T05:00:00Z",
                "2026-03-09T06:30:00+00:00",
            ),
            ("0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z", "none"),
            (
                "0,30 8-9 * * *",
                "UTC",
                "2026-01-01T08:31:00Z",
                "2026-01-01T09:00:00+00:00",
            ),
        ];
        for (expr, zone, after, want) in cases {
            assert_eq!(
                next(expr, zone, after),
                want,
                "{expr} in {zone} after {after}"
            );
        }
    }

    #[test]
    fn rejected_expressions() {
        let cases = [
            ("@daily", "UTC"),
            ("@every 5m", "UTC"),
            ("* * * *", "UTC"),
            ("0 * * * * *", "UTC"),
            ("60 * * * *", "UTC"),
            ("* 24 * * *", "UTC"),
            ("* * 0 * *", "UTC"),
            ("* * * 13 *", "UTC"),
            ("* * * * 7", "UTC"),
            ("? * * * *", "UTC"),
            ("*/0 * * * *", "UTC"),
            ("5-1 * * * *", "UTC"),
            ("x * * * *", "UTC"),
            ("0 0 L * *", "UTC"),
            ("", "UTC"),
        ];
        for (expr, zone) in cases {
            assert!(
                matches!(
                    CronSchedule::parse(expr, zone),
                    Err(CronError::Expression(_))
                ),
                "{expr:?} should be rejected"
            );
        }
        assert_eq!(
            CronSchedule::parse("* * * * *", "Mars/Base"),
            Err(CronError::Timezone("Mars/Base".into()))
        );
        assert!(matches!(
            CronSchedule::parse("TZ=Nowhere/X * * * * *", "UTC"),
            Err(CronError::Timezone(_))
        ));
    }
}
