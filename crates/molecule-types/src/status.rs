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

/// A set of workspace statuses (one bit each).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusSet(u8);

impl StatusSet {
    pub const fn of(list: &[WorkspaceStatus]) -> Self {
        let mut bits = 0u8;
        let mut i = 0;
        while i < list.len() {
            bits |= 1 << list[i] as u8;
            i += 1;
        }
        Self(bits)
    }

    pub const fn contains(self, status: WorkspaceStatus) -> bool {
        self.0 & (1 << status as u8) != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// This set and `status`.
    pub const fn with(self, status: WorkspaceStatus) -> Self {
        Self(self.0 | 1 << status as u8)
    }

    /// The members, in [`WorkspaceStatus::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = WorkspaceStatus> {
        WorkspaceStatus::ALL
            .into_iter()
            .filter(move |s| self.contains(*s))
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A workspace that runs or is being started: what a governed restart
/// may leave.
const RUNNING: StatusSet = StatusSet::of(&[
    WorkspaceStatus::Provisioning,
    WorkspaceStatus::Online,
    WorkspaceStatus::Degraded,
    WorkspaceStatus::Offline,
]);
/// Every status a workspace can be paused or failed from.
const ACTIVE: StatusSet = RUNNING.with(WorkspaceStatus::Failed);

/// One status change of the workspace status machine: where it goes and the
/// only statuses it may start from. Every status write names one of these
/// (the store applies it as a compare-and-set), so the machine lives here and
/// nowhere else; there is no "from any status".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    name: &'static str,
    from: StatusSet,
    to: WorkspaceStatus,
}

impl Transition {
    const fn new(name: &'static str, from: StatusSet, to: WorkspaceStatus) -> Self {
        assert!(!from.is_empty(), "a transition starts from some status");
        assert!(
            !from.contains(WorkspaceStatus::Removed),
            "nothing leaves removed"
        );
        Self { name, from, to }
    }

    /// An operator pauses an active workspace.
    pub const PAUSE: Self = Self::new("pause", ACTIVE, WorkspaceStatus::Paused);
    /// Provisioning failed, the agent never registered, or a crash loop.
    pub const FAIL: Self = Self::new("fail", ACTIVE, WorkspaceStatus::Failed);
    /// An operator restarts or resumes: from any status but removed (it is
    /// how a failed workspace is retried and a paused one resumed).
    pub const OPERATOR_RESTART: Self = Self::new(
        "operator restart",
        ACTIVE.with(WorkspaceStatus::Paused),
        WorkspaceStatus::Provisioning,
    );
    /// A restart the governor granted. Never from `paused` or `failed`: an
    /// operator's pause (or a verdict of failure) that lands between the
    /// governor's decision and this write wins.
    pub const GOVERNED_RESTART: Self =
        Self::new("governed restart", RUNNING, WorkspaceStatus::Provisioning);
    /// Still provisioning; only the reason changes (runtime started, ...).
    pub const PROVISIONING_PROGRESS: Self = Self::new(
        "provisioning progress",
        StatusSet::of(&[WorkspaceStatus::Provisioning]),
        WorkspaceStatus::Provisioning,
    );
    /// An `external` workspace is online as soon as it exists.
    pub const EXTERNAL_ONLINE: Self = Self::new(
        "external online",
        StatusSet::of(&[WorkspaceStatus::Provisioning]),
        WorkspaceStatus::Online,
    );
    /// Liveness lost: heartbeats stopped or the runtime is gone.
    pub const LOST: Self = Self::new(
        "lost",
        StatusSet::of(&[WorkspaceStatus::Online, WorkspaceStatus::Degraded]),
        WorkspaceStatus::Offline,
    );
    /// Heartbeats report a high error rate.
    pub const DEGRADE: Self = Self::new(
        "degrade",
        StatusSet::of(&[WorkspaceStatus::Online]),
        WorkspaceStatus::Degraded,
    );
    /// Heartbeats report a low error rate again.
    pub const RECOVER: Self = Self::new(
        "recover",
        StatusSet::of(&[WorkspaceStatus::Degraded]),
        WorkspaceStatus::Online,
    );
    /// A heartbeat from an offline workspace.
    pub const RETURN: Self = Self::new(
        "return",
        StatusSet::of(&[WorkspaceStatus::Offline]),
        WorkspaceStatus::Online,
    );

    pub const ALL: [Self; 10] = [
        Self::PAUSE,
        Self::FAIL,
        Self::OPERATOR_RESTART,
        Self::GOVERNED_RESTART,
        Self::PROVISIONING_PROGRESS,
        Self::EXTERNAL_ONLINE,
        Self::LOST,
        Self::DEGRADE,
        Self::RECOVER,
        Self::RETURN,
    ];

    pub const fn name(self) -> &'static str {
        self.name
    }

    pub const fn from(self) -> StatusSet {
        self.from
    }

    pub const fn to(self) -> WorkspaceStatus {
        self.to
    }

    /// Whether a workspace in `status` may take this transition.
    pub const fn allows(self, status: WorkspaceStatus) -> bool {
        self.from.contains(status)
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

    #[test]
    fn status_sets_hold_exactly_their_members() {
        use WorkspaceStatus::*;
        let set = StatusSet::of(&[Online, Paused]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Online, Paused]);
        for st in WorkspaceStatus::ALL {
            assert_eq!(set.contains(st), matches!(st, Online | Paused), "{st}");
        }
        assert!(StatusSet::of(&[]).is_empty());
        assert_eq!(format!("{set:?}"), "{Online, Paused}");
    }

    #[test]
    fn the_status_machine() {
        use WorkspaceStatus::*;
        for t in Transition::ALL {
            assert!(!t.from().is_empty(), "{}", t.name());
            assert!(!t.allows(Removed), "{} leaves removed", t.name());
        }
        // A pause is never undone by the governor, only by an operator.
        assert!(!Transition::GOVERNED_RESTART.allows(Paused));
        assert!(!Transition::GOVERNED_RESTART.allows(Failed));
        assert!(Transition::OPERATOR_RESTART.allows(Paused));
        assert!(Transition::OPERATOR_RESTART.allows(Failed));
        assert!(!Transition::PAUSE.allows(Paused));
        assert!(!Transition::FAIL.allows(Paused));
        assert_eq!(
            Transition::LOST.from().iter().collect::<Vec<_>>(),
            vec![Online, Degraded]
        );
        let names: std::collections::HashSet<_> =
            Transition::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Transition::ALL.len());
    }
}
