//! The event catalogue (data-and-lifecycle §5.2) and the WebSocket envelope.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

macro_rules! event_types {
    ($( $variant:ident = $name:literal, $persisted:literal; )*) => {
        /// Every event type the platform emits, with the reference's type string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $( $variant, )* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[ $( EventType::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( EventType::$variant => $name, )* }
            }

            /// Persisted events get a `structure_events` row; the others are
            /// only pushed to live WebSocket clients.
            pub fn is_persisted(self) -> bool {
                match self { $( EventType::$variant => $persisted, )* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $( $name => Some(EventType::$variant), )* _ => None }
            }
        }
    };
}

event_types! {
    WorkspaceProvisioning = "WORKSPACE_PROVISIONING", true;
    WorkspaceOnline = "WORKSPACE_ONLINE", true;
    WorkspaceOffline = "WORKSPACE_OFFLINE", true;
    WorkspaceDegraded = "WORKSPACE_DEGRADED", true;
    WorkspacePaused = "WORKSPACE_PAUSED", true;
    WorkspaceRemoved = "WORKSPACE_REMOVED", true;
    WorkspaceProvisionFailed = "WORKSPACE_PROVISION_FAILED", true;
    WorkspaceExpanded = "WORKSPACE_EXPANDED", true;
    WorkspaceCollapsed = "WORKSPACE_COLLAPSED", true;
    WorkspaceRestartDecision = "WORKSPACE_RESTART_DECISION", true;
    FleetBreakerTripped = "FLEET_BREAKER_TRIPPED", true;
    FleetBreakerReset = "FLEET_BREAKER_RESET", true;
    AgentCardUpdated = "AGENT_CARD_UPDATED", true;
    WorkspaceA2aConformance = "WORKSPACE_A2A_CONFORMANCE", true;
    AgentAssigned = "AGENT_ASSIGNED", true;
    AgentReplaced = "AGENT_REPLACED", true;
    AgentRemoved = "AGENT_REMOVED", true;
    AgentMoved = "AGENT_MOVED", true;
    ApprovalRequested = "APPROVAL_REQUESTED", true;
    ApprovalEscalated = "APPROVAL_ESCALATED", true;
    ApprovalApproved = "APPROVAL_APPROVED", true;
    ApprovalDenied = "APPROVAL_DENIED", true;
    DelegationSent = "DELEGATION_SENT", true;
    DelegationStatus = "DELEGATION_STATUS", true;
    DelegationComplete = "DELEGATION_COMPLETE", true;
    DelegationFailed = "DELEGATION_FAILED", true;
    CronExecuted = "CRON_EXECUTED", true;
    CronSkipped = "CRON_SKIPPED", true;
    ChannelMessage = "CHANNEL_MESSAGE", true;
    A2aResponse = "A2A_RESPONSE", false;
    ActivityLogged = "ACTIVITY_LOGGED", false;
    AgentMessage = "AGENT_MESSAGE", false;
    TaskUpdated = "TASK_UPDATED", false;
}

impl EventType {
    /// Events that carry what was said or decided in an exchange (answers,
    /// messages, activity, delegation and approval texts, runs) rather than
    /// a workspace's state. A workspace's event stream shows them only for
    /// exchanges it took part in.
    pub fn carries_content(self) -> bool {
        use EventType::*;
        matches!(
            self,
            A2aResponse
                | ActivityLogged
                | AgentMessage
                | ApprovalRequested
                | ApprovalEscalated
                | ApprovalApproved
                | ApprovalDenied
                | DelegationSent
                | DelegationStatus
                | DelegationComplete
                | DelegationFailed
                | CronExecuted
                | CronSkipped
                | ChannelMessage
        )
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventType::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {s}")))
    }
}

/// An event as the platform raises it: a type, the subject workspace (if any)
/// and a JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub event_type: EventType,
    pub workspace_id: Option<Uuid>,
    pub payload: Value,
}

impl Event {
    pub fn new(event_type: EventType, workspace_id: Uuid, payload: Value) -> Self {
        Self {
            event_type,
            workspace_id: Some(workspace_id),
            payload,
        }
    }
}

/// The WebSocket frame: `{event, workspace_id, timestamp, payload}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventEnvelope {
    pub event: String,
    pub workspace_id: String,
    pub timestamp: DateTime<Utc>,
    pub payload: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_strings_round_trip_and_broadcast_only_set_matches_spec() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
        }
        let broadcast_only: Vec<_> = EventType::ALL
            .iter()
            .filter(|t| !t.is_persisted())
            .map(|t| t.as_str())
            .collect();
        assert_eq!(
            broadcast_only,
            [
                "A2A_RESPONSE",
                "ACTIVITY_LOGGED",
                "AGENT_MESSAGE",
                "TASK_UPDATED"
            ]
        );
    }
}
