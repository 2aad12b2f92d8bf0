//! Routes of the per-workspace resources (app/resources/): memories,
//! schedules, secrets.

pub(super) mod memories;
pub(super) mod schedules;
pub(super) mod secrets;
