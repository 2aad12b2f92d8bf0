//! Shared vocabulary of Molecule: typed ids, status enums, the event catalogue
//! and the wire DTOs of the HTTP API. No I/O lives here, so the CLI, the agent
//! and the server can all depend on it without pulling in a runtime.

pub mod content;
pub mod dto;
pub mod event;
pub mod ids;
pub mod status;
pub mod vocab;
pub mod workspace_data;

pub use event::{Event, EventEnvelope, EventType};
pub use ids::WorkspaceId;
pub use status::{ParseStatusError, StatusSet, Transition, WorkspaceStatus};
pub use uuid::Uuid;
pub use vocab::{
    ActivityType, ApprovalState, DelegationStatus, RestartDecision, RunStatus, Runtime, UnknownWord,
};

/// Prefixes of caller ids that name the platform itself rather than a workspace
/// (webhooks, the restart-context sender, tests, channel adapters).
pub const SYSTEM_CALLER_PREFIXES: [&str; 4] = ["webhook:", "system:", "test:", "channel:"];

/// True when `caller` is one of the platform's own system identities.
pub fn is_system_caller(caller: &str) -> bool {
    SYSTEM_CALLER_PREFIXES.iter().any(|p| caller.starts_with(p))
}

/// Deterministic container name of a workspace: `ws-` plus the first 12
/// characters of its id.
pub fn container_name(id: Uuid) -> String {
    let s = id.to_string();
    format!("ws-{}", &s[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_callers_are_recognised_by_prefix() {
        for (caller, want) in [
            ("webhook:github", true),
            ("system:restart-context", true),
            ("test:x", true),
            ("channel:telegram", true),
            ("", false),
            ("systemd", false),
            ("3f1c0b7e-0000-0000-0000-000000000000", false),
        ] {
            assert_eq!(is_system_caller(caller), want, "{caller}");
        }
    }

    #[test]
    fn container_name_uses_first_twelve_chars() {
        let id: Uuid = "3f1c0b7e-1234-4000-8000-000000000000".parse().unwrap();
        assert_eq!(container_name(id), "ws-3f1c0b7e-123");
    }
}
