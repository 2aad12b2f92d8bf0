//! Workspace status machine values, mapped to the spec's strings at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The status of a workspace row (data-and-lifecycle §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceStatus {
    Provisioning,
    Online,
    Degraded,
    Offline,
    Failed,
    Paused,
    Removed,
}

impl WorkspaceStatus {
    pub const ALL: [WorkspaceStatus; 7] = [
        Self::Provisioning,
        Self::Online,
        Self::Degraded,
        Self::Offline,
        Self::Failed,
        Self::Paused,
        Self::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Online => "online",
            Self::Degraded => "degraded",
            Self::Offline => "offline",
            Self::Failed => "failed",
            Self::Paused => "paused",
            Self::Removed => "removed",
        }
    }

    /// Online or degraded: the agent is up and answering.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Online | Self::Degraded)
    }
}

impl fmt::Display for WorkspaceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown workspace status {0:?}")]
pub struct ParseStatusError(pub String);

impl FromStr for WorkspaceStatus {
    type Err = ParseStatusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseStatusError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_strings_round_trip() {
        for st in WorkspaceStatus::ALL {
            assert_eq!(st.as_str().parse::<WorkspaceStatus>().unwrap(), st);
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert!("gone".parse::<WorkspaceStatus>().is_err());
    }
}
