//! The closed string vocabularies of the contract as enums: each has the
//! contract's spelling (`as_str`, serde, `Display`) and parses back
//! (`FromStr`), so code matches on variants instead of string literals.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A string that is not one of a vocabulary's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub value: String,
}

macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident ($what:literal) { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownWord { what: $what, value: s.to_string() })
            }
        }
    };
}

vocabulary! {
    /// Status of a delegation's tracking row (data-and-lifecycle §4.1).
    DelegationStatus("delegation status") {
        Pending = "pending",
        Dispatched = "dispatched",
        Completed = "completed",
        Failed = "failed",
    }
}

vocabulary! {
    /// Status of an approval.
    ApprovalState("approval status") {
        Pending = "pending",
        Approved = "approved",
        Denied = "denied",
    }
}

vocabulary! {
    /// `activity_type` of an activity row (data-and-lifecycle §4.4).
    ActivityType("activity type") {
        A2aSend = "a2a_send",
        A2aReceive = "a2a_receive",
        TaskUpdate = "task_update",
        AgentLog = "agent_log",
        SkillPromotion = "skill_promotion",
        MemoryWrite = "memory_write",
        Error = "error",
        /// Platform-written: delegation tracking and result rows.
        Delegation = "delegation",
        /// Platform-written: a schedule's run.
        CronRun = "cron_run",
    }
}

impl ActivityType {
    /// The types an agent may report itself.
    pub const REPORTABLE: [ActivityType; 7] = [
        ActivityType::A2aSend,
        ActivityType::A2aReceive,
        ActivityType::TaskUpdate,
        ActivityType::AgentLog,
        ActivityType::SkillPromotion,
        ActivityType::MemoryWrite,
        ActivityType::Error,
    ];
}

vocabulary! {
    /// Status of a schedule's run (its history row and `last_status`).
    RunStatus("schedule run status") {
        Ok = "ok",
        Error = "error",
        Skipped = "skipped",
    }
}

vocabulary! {
    /// What the lifecycle decided about a workspace
    /// (`WORKSPACE_RESTART_DECISION.decision`, the decisions metric).
    RestartDecision("restart decision") {
        /// The governor granted a restart (after its backoff).
        Restart = "restart",
        /// Crash loop: no more restarts; the workspace is failed.
        GiveUp = "give_up",
        /// The fleet breaker is open: nothing is restarted.
        Frozen = "frozen",
        /// The heartbeat stopped but the runtime runs: kept.
        Keep = "keep",
        /// The agent never registered: failed.
        Fail = "fail",
    }
}

/// What runs a workspace: an agent the platform does not start
/// (`external`), or a container runtime it provisions by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Runtime {
    External,
    Container(String),
}

impl Runtime {
    pub const EXTERNAL: &'static str = "external";

    pub fn parse(s: &str) -> Runtime {
        if s == Self::EXTERNAL {
            Runtime::External
        } else {
            Runtime::Container(s.to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Runtime::External => Self::EXTERNAL,
            Runtime::Container(name) => name,
        }
    }

    pub fn is_external(&self) -> bool {
        matches!(self, Runtime::External)
    }
}

impl From<&str> for Runtime {
    fn from(s: &str) -> Self {
        Runtime::parse(s)
    }
}

/// Takes the `String` a row column was read into, without a second copy.
impl From<String> for Runtime {
    fn from(s: String) -> Self {
        if s == Self::EXTERNAL {
            Runtime::External
        } else {
            Runtime::Container(s)
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + Serialize,
        <T as FromStr>::Err: fmt::Debug,
    {
        for v in all {
            let word = v.to_string();
            assert_eq!(word.parse::<T>().unwrap(), *v);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(word));
        }
    }

    #[test]
    fn every_word_round_trips_and_strangers_are_refused() {
        round_trips(DelegationStatus::ALL);
        round_trips(ApprovalState::ALL);
        round_trips(ActivityType::ALL);
        round_trips(RunStatus::ALL);
        round_trips(RestartDecision::ALL);
        assert_eq!(RestartDecision::GiveUp.as_str(), "give_up");
        let err = "bogus".parse::<ActivityType>().unwrap_err();
        assert_eq!(err.to_string(), "unknown activity type \"bogus\"");
        let v: DelegationStatus = serde_json::from_str("\"dispatched\"").unwrap();
        assert_eq!(v, DelegationStatus::Dispatched);
    }

    #[test]
    fn runtimes() {
        assert!(Runtime::parse("external").is_external());
        assert_eq!(
            Runtime::parse("langgraph"),
            Runtime::Container("langgraph".into())
        );
        assert_eq!(Runtime::parse("langgraph").as_str(), "langgraph");
    }
}
