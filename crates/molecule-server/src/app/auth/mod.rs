//! Authentication: workspace tokens (issue, hash, verify, rotate, revoke)
//! and the auth classes of api-contract §2, with the fixes DESIGN.md asks
//! for: production mode has a distinct admin credential, no fail-open path,
//! and no route that trusts a bare workspace id; development mode's open
//! doors open to loopback peers only ([`Network`]).
//!
//! Verified tokens are cached in memory (hash → workspace). Revocation
//! happens on workspace delete and on rotation, both of which clear the
//! cache entries they revoke.

pub mod access;
mod proofs;
mod rules;

pub use proofs::{
    AccessQuery, AdminAccess, AgentAccess, ApprovalDecider, Audience, DevAccess, PatchAccess,
    PeerAccess, ReadAccess, WorkspaceAccess,
};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use molecule_types::WorkspaceId;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

use crate::app::App;
use crate::config::Mode;
use crate::error::{AppError, AppResult};

/// A freshly minted token: the plaintext (shown once) and what is stored.
pub struct IssuedToken {
    pub plaintext: String,
    pub hash: [u8; 32],
    pub prefix: String,
}

/// 32 random bytes, base64url without padding (43 characters).
pub fn generate_token() -> IssuedToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let plaintext = URL_SAFE_NO_PAD.encode(bytes);
    IssuedToken {
        hash: hash_token(&plaintext),
        prefix: plaintext[..8].to_string(),
        plaintext,
    }
}

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time comparison of two secrets.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let (ha, hb) = (hash_token(a), hash_token(b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[derive(Default, Clone)]
pub struct TokenCache {
    inner: Arc<RwLock<TokenCacheInner>>,
}

#[derive(Default)]
struct TokenCacheInner {
    by_hash: HashMap<[u8; 32], Uuid>,
    has_live: HashSet<Uuid>,
}

impl TokenCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Uuid> {
        self.inner.read().ok()?.by_hash.get(hash).copied()
    }
    fn remember(&self, hash: [u8; 32], ws: Uuid) {
        if let Ok(mut c) = self.inner.write() {
            c.by_hash.insert(hash, ws);
            c.has_live.insert(ws);
        }
    }
    fn knows_live(&self, ws: Uuid) -> bool {
        self.inner
            .read()
            .map(|c| c.has_live.contains(&ws))
            .unwrap_or(false)
    }
    fn mark_live(&self, ws: Uuid) {
        if let Ok(mut c) = self.inner.write() {
            c.has_live.insert(ws);
        }
    }
    /// Forget every token of these workspaces (they were revoked).
    pub fn forget(&self, ids: &[Uuid]) {
        if let Ok(mut c) = self.inner.write() {
            let gone: HashSet<Uuid> = ids.iter().copied().collect();
            c.by_hash.retain(|_, ws| !gone.contains(ws));
            c.has_live.retain(|ws| !gone.contains(ws));
        }
    }
    /// Forget every token (revocations may have been missed).
    pub fn forget_all(&self) {
        if let Ok(mut c) = self.inner.write() {
            c.by_hash.clear();
            c.has_live.clear();
        }
    }
}

/// Who a request is, as far as admin routes care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Workspace(Uuid),
    Anonymous,
}

/// Where a request came from. Development mode's open doors (open admin
/// routes, first-register tokens, trusted canvas calls) open only to
/// loopback peers: never to containers reaching the gateway listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Loopback,
    Remote,
}

impl Network {
    pub fn of(ip: std::net::IpAddr) -> Network {
        let loopback = match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback(),
            std::net::IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        if loopback {
            Network::Loopback
        } else {
            Network::Remote
        }
    }
}

/// What a request presents to be authorised: its bearer token, if any, and
/// the network it came from.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub bearer: Option<&'a str>,
    pub network: Network,
}

impl<'a> Credentials<'a> {
    /// A request from a remote peer: no development-mode exemption applies.
    pub fn remote(bearer: Option<&'a str>) -> Self {
        Self {
            bearer,
            network: Network::Remote,
        }
    }
}

impl App {
    /// Mint and store a new live token for `ws`; returns the plaintext.
    pub async fn issue_token(&self, ws: Uuid) -> AppResult<String> {
        let t = generate_token();
        self.store
            .token_insert(ws, &t.hash, &t.prefix, self.now())
            .await
            .map_err(AppError::internal("token issue failed"))?;
        self.tokens.remember(t.hash, ws);
        Ok(t.plaintext)
    }

    /// Rotate `ws`'s credential: every live token is revoked and a new one
    /// returned (once). The old tokens stop working at once, on every path.
    pub async fn rotate_token(&self, _: AdminAccess, ws: WorkspaceId) -> AppResult<String> {
        let ws = ws.uuid();
        self.live_workspace_row(ws).await?;
        let t = generate_token();
        self.store
            .token_replace(ws, &t.hash, &t.prefix, self.now())
            .await
            .map_err(AppError::internal("token issue failed"))?;
        self.tokens_revoked(&[ws]).await;
        self.tokens.remember(t.hash, ws);
        tracing::info!(workspace_id = %ws, prefix = %t.prefix, "workspace token rotated");
        Ok(t.plaintext)
    }

    /// The workspace a live token belongs to.
    pub async fn token_owner(&self, token: &str) -> AppResult<Option<Uuid>> {
        let hash = hash_token(token);
        if let Some(ws) = self.tokens.get(&hash) {
            return Ok(Some(ws));
        }
        let owner = self
            .store
            .token_lookup(&hash, self.now())
            .await
            .map_err(AppError::internal("auth check failed"))?;
        if let Some(ws) = owner {
            self.tokens.remember(hash, ws);
        }
        Ok(owner)
    }

    pub(crate) async fn has_live_token(&self, ws: Uuid) -> AppResult<bool> {
        if self.tokens.knows_live(ws) {
            return Ok(true);
        }
        let live = self
            .store
            .token_has_live(ws)
            .await
            .map_err(AppError::internal("auth check failed"))?;
        if live {
            self.tokens.mark_live(ws);
        }
        Ok(live)
    }

    fn is_admin_token(&self, bearer: Option<&str>) -> bool {
        match (bearer, self.config.admin_token.as_deref()) {
            (Some(b), Some(admin)) => secrets_equal(b, admin),
            _ => false,
        }
    }

    /// Development mode, and a loopback peer: the reference's open doors
    /// apply. Everything else is held to production's rules.
    pub fn dev_open(&self, creds: Credentials<'_>) -> bool {
        self.config.mode == Mode::Development && creds.network == Network::Loopback
    }

    /// AdminAuth. Development, from loopback: open (the server only binds
    /// loopback there). Otherwise the admin token and nothing else; a
    /// workspace token is never an admin token.
    pub fn auth_admin(&self, creds: Credentials<'_>) -> AppResult<AdminAccess> {
        if self.dev_open(creds) {
            return Ok(AdminAccess::granted());
        }
        match creds.bearer {
            None => Err(AppError::unauthenticated("admin auth required")),
            Some(_) if self.is_admin_token(creds.bearer) => Ok(AdminAccess::granted()),
            Some(_) => Err(AppError::unauthenticated("invalid admin auth token")),
        }
    }

    /// Development mode from loopback, and nothing else: anything else is
    /// told the route does not exist.
    pub fn auth_dev(&self, creds: Credentials<'_>) -> AppResult<DevAccess> {
        if self.dev_open(creds) {
            Ok(DevAccess::granted())
        } else {
            Err(AppError::not_found("not found"))
        }
    }

    /// WorkspaceAuth (strict): a live token bound to `ws`. The admin token
    /// also passes, so operators can act on any workspace.
    pub async fn auth_workspace(
        &self,
        ws: Uuid,
        creds: Credentials<'_>,
    ) -> AppResult<WorkspaceAccess> {
        self.auth_bound(ws, creds.bearer, "workspace").await?;
        Ok(WorkspaceAccess::granted(ws))
    }

    /// A bearer bound to `ws` (or the admin token), required; `what` names
    /// the credential in the error (`workspace`, `caller`).
    async fn auth_bound(&self, ws: Uuid, bearer: Option<&str>, what: &str) -> AppResult<()> {
        let Some(token) = bearer else {
            return Err(AppError::unauthenticated(format!(
                "missing {what} auth token"
            )));
        };
        if self.is_admin_token(bearer) {
            return Ok(());
        }
        match self.token_owner(token).await? {
            Some(owner) if owner == ws => Ok(()),
            _ => Err(AppError::unauthenticated(format!(
                "invalid {what} auth token"
            ))),
        }
    }

    /// The gate of the agent routes (register, heartbeat, update-card,
    /// discover, peers, schedule health, `/ws`, A2A callers). Production,
    /// and development from a non-loopback peer: strict, a token bound to
    /// `ws` (a workspace's credential is born with it, so no route ever
    /// trusts a bare id). Development from loopback keeps the reference's
    /// grandfathering: a workspace without a live token passes (its e2e
    /// scripts register first and receive the token then).
    pub async fn auth_agent(
        &self,
        ws: Uuid,
        creds: Credentials<'_>,
        what: &str,
    ) -> AppResult<AgentAccess> {
        if self.dev_open(creds) && !self.is_admin_token(creds.bearer) {
            let live = match self.has_live_token(ws).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "token check failed; development mode lets the request pass");
                    false
                }
            };
            if !live {
                return Ok(AgentAccess::granted(ws));
            }
        }
        self.auth_bound(ws, creds.bearer, what).await?;
        Ok(AgentAccess::granted(ws))
    }

    /// Routes the contract leaves open that still name a workspace
    /// (`GET /workspaces/:id`): open in development from loopback; otherwise
    /// the admin token or the workspace's own.
    pub async fn auth_reader(&self, ws: Uuid, creds: Credentials<'_>) -> AppResult<ReadAccess> {
        if !self.dev_open(creds) {
            self.auth_workspace(ws, creds).await?;
        }
        Ok(ReadAccess::granted(ws))
    }

    /// Identify a bearer without requiring anything.
    pub async fn principal(&self, bearer: Option<&str>) -> AppResult<Principal> {
        if self.is_admin_token(bearer) {
            return Ok(Principal::Admin);
        }
        match bearer {
            None => Ok(Principal::Anonymous),
            Some(t) => Ok(self
                .token_owner(t)
                .await?
                .map(Principal::Workspace)
                .unwrap_or(Principal::Anonymous)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_char_base64url_and_hash_to_sha256() {
        let t = generate_token();
        assert_eq!(t.plaintext.len(), 43);
        assert!(
            t.plaintext
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(t.prefix, &t.plaintext[..8]);
        assert_eq!(t.hash, hash_token(&t.plaintext));
        assert_ne!(generate_token().plaintext, t.plaintext);
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
