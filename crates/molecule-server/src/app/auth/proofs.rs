//! Proofs of authorisation.
//!
//! The convention: a handler authorises first, through an extractor
//! (`http::extract::{Admin, Own, Agent, Reader}`) or, where the rule
//! depends on the body, by calling the matching `App::auth_*` method; either
//! way it receives a proof, and every app method a route reaches takes that
//! proof as its first argument. Only `app::auth` makes proofs (their fields
//! are private to it), so a method that takes one cannot be reached by a
//! request that was not authorised, and its signature says by which rule.
//! Background tasks act as the platform and make what they need with
//! `pub(in crate::app)` constructors.

use molecule_types::WorkspaceId;
use uuid::Uuid;

macro_rules! workspace_proof {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(WorkspaceId);

        impl $name {
            pub(in crate::app) fn granted(id: impl Into<WorkspaceId>) -> Self {
                Self(id.into())
            }

            /// The workspace the proof is for.
            pub fn id(self) -> WorkspaceId {
                self.0
            }

            /// The same id as a plain UUID, for storage and caches.
            pub fn uuid(self) -> Uuid {
                self.0.uuid()
            }
        }
    };
}

/// AdminAuth passed: the admin token, or development mode from loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminAccess(());

impl AdminAccess {
    pub(in crate::app) fn granted() -> Self {
        Self(())
    }
}

/// Development mode and a loopback peer: the reference's test-only doors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevAccess(());

impl DevAccess {
    pub(in crate::app) fn granted() -> Self {
        Self(())
    }
}

workspace_proof!(
    /// WorkspaceAuth (strict) passed for this workspace: its own live token
    /// or the admin token.
    WorkspaceAccess
);

workspace_proof!(
    /// The agent routes' rule passed for this workspace (register,
    /// heartbeat, update-card, peers, discover's caller): as
    /// [`WorkspaceAccess`], and development from loopback also lets a
    /// workspace without a live token through.
    AgentAccess
);

workspace_proof!(
    /// A route the contract leaves open that still names a workspace
    /// (`GET /workspaces/:id`): open in development from loopback, else as
    /// [`WorkspaceAccess`].
    ReadAccess
);

/// A `PATCH /workspaces/:id` body that may be applied: the admin token for
/// any field, the workspace's own token for the non-sensitive ones. The
/// proof holds the body it was granted for, so no other body can ride on it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchAccess {
    id: WorkspaceId,
    body: serde_json::Map<String, serde_json::Value>,
}

impl PatchAccess {
    pub(in crate::app) fn granted(
        id: impl Into<WorkspaceId>,
        body: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        Self {
            id: id.into(),
            body,
        }
    }

    pub fn id(&self) -> WorkspaceId {
        self.id
    }

    pub(in crate::app) fn into_body(self) -> serde_json::Map<String, serde_json::Value> {
        self.body
    }
}

workspace_proof!(
    /// A pending approval of this workspace may be decided: in production
    /// by an operator or the workspace's parent, never by the requester.
    ApprovalDecider
);

workspace_proof!(
    /// The caller named in `X-Workspace-ID` may read this workspace's
    /// schedule health: it may talk to it, or is a system caller vouched
    /// for by the admin token.
    PeerAccess
);

/// `POST /registry/check-access` may be answered: development from
/// loopback, the caller's own token, or the admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessQuery(());

impl AccessQuery {
    pub(in crate::app) fn granted() -> Self {
        Self(())
    }
}

/// What a `/ws` subscriber may see, decided when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// An operator: every event.
    Everything,
    /// A workspace: the events its access rules let it see.
    Workspace(Uuid),
}
