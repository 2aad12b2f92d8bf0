//! Numeric settings: positive durations in a unit, whole counts with a
//! minimum. Each bad value adds a problem naming its variable and falls
//! back to the default, so every problem is reported at once.

use std::time::Duration;

/// Longest duration any setting may name (about 30 000 years): larger
/// values would overflow `Duration`.
const MAX_SETTING_SECS: f64 = 1e12;

/// A positive number of `unit`s, each `unit_secs` long.
pub(super) fn positive(
    raw: &Option<String>,
    name: &str,
    unit: &str,
    unit_secs: f64,
    default: f64,
    problems: &mut Vec<String>,
) -> Duration {
    match raw.as_deref().map(str::trim) {
        None => Duration::from_secs_f64(default * unit_secs),
        Some(v) => match v.parse::<f64>() {
            Ok(n) if n > 0.0 && n.is_finite() && n * unit_secs <= MAX_SETTING_SECS => {
                Duration::from_secs_f64(n * unit_secs)
            }
            _ => {
                problems.push(format!("{name}={v:?} must be a positive number of {unit}"));
                Duration::from_secs_f64(default * unit_secs)
            }
        },
    }
}

/// A whole number, at least `min`.
pub(super) fn count(
    raw: &Option<String>,
    name: &str,
    default: u64,
    min: u64,
    problems: &mut Vec<String>,
) -> u64 {
    match raw.as_deref().map(str::trim) {
        None => default,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= min && n <= usize::MAX as u64 => n,
            _ => {
                problems.push(format!(
                    "{name}={v:?} must be a whole number, at least {min}"
                ));
                default
            }
        },
    }
}

pub(super) fn seconds(
    raw: &Option<String>,
    name: &str,
    default: u64,
    problems: &mut Vec<String>,
) -> Duration {
    positive(raw, name, "seconds", 1.0, default as f64, problems)
}
