//! Typed ids. A workspace id is a UUID, but a function that takes a
//! workspace and one of its sub-resources (a schedule, a memory, an
//! approval) takes a [`WorkspaceId`] and a plain [`Uuid`], so the two cannot
//! be swapped at a call site.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The id of a workspace. Serialised as the bare UUID string, exactly like
/// the `Uuid` it wraps, so no wire shape changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkspaceId(Uuid);

impl WorkspaceId {
    pub const fn new(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID, for storage and for APIs that key by plain ids.
    pub const fn uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for WorkspaceId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl From<WorkspaceId> for Uuid {
    fn from(id: WorkspaceId) -> Self {
        id.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for WorkspaceId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_bare_uuid() {
        let u = Uuid::from_u128(0x1234);
        let id = WorkspaceId::new(u);
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::to_value(u).unwrap()
        );
        let back: WorkspaceId = serde_json::from_value(serde_json::to_value(u).unwrap()).unwrap();
        assert_eq!(back, id);
        assert_eq!(id.to_string(), u.to_string());
        assert_eq!(u.to_string().parse::<WorkspaceId>().unwrap(), id);
        assert!("not-a-uuid".parse::<WorkspaceId>().is_err());
    }
}
