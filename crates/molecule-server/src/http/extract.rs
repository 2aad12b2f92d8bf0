//! Request extractors with the contract's error texts: JSON bodies with a
//! size cap and clear 400s, bearer tokens, and workspace ids in paths.

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use uuid::Uuid;

use crate::app::auth::{Credentials, Network};
use crate::error::AppError;

/// Largest JSON body accepted by ordinary routes.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// A JSON body: at most `LIMIT` bytes ([`MAX_JSON_BODY`] unless a route
/// carries content, see [`CONTENT_BODY`]; 413 beyond), parsed into `T`
/// (400 with the parser's message otherwise).
pub struct JsonBody<T, const LIMIT: usize = MAX_JSON_BODY>(pub T);

/// Largest body of the routes that carry files (template import, files
/// replace, bundle import).
pub const CONTENT_BODY: usize = 32 << 20;

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S>
    for JsonBody<T, LIMIT>
{
    type Rejection = AppError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_limited(&parts.headers, body, LIMIT).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| AppError::invalid(format!("invalid request body: {e}")))
    }
}

/// Read a body up to the cap.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    let _ = state;
    let (parts, body) = req.into_parts();
    read_capped(&parts.headers, body).await
}

/// Read `body` up to [`MAX_JSON_BODY`]: a declared or actual excess is 413
/// (before reading, when `Content-Length` says so); any other read failure
/// is 400 `failed to read request body`.
pub async fn read_capped(headers: &HeaderMap, body: Body) -> Result<Bytes, AppError> {
    read_limited(headers, body, MAX_JSON_BODY).await
}

async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, AppError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if mentions_length_limit(&e) {
            too_large(limit)
        } else {
            AppError::invalid("failed to read request body")
        }
    })
}

/// The body-size limit error is only reachable as a source in the chain.
fn mentions_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains("length limit") {
            return true;
        }
        source = s.source();
    }
    false
}

fn too_large(limit: usize) -> AppError {
    AppError::TooLarge(format!("request body too large (limit {limit} bytes)"))
}

/// `Authorization: Bearer <token>` (prefix case-sensitive, token trimmed),
/// and the network the request came from (its TCP peer; a request without
/// a known peer counts as remote).
pub struct Bearer {
    token: Option<String>,
    network: Network,
}

impl Bearer {
    pub fn as_deref(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// What the request presents, for the `auth_*` checks.
    pub fn creds(&self) -> Credentials<'_> {
        Credentials {
            bearer: self.token.as_deref(),
            network: self.network,
        }
    }
}

pub fn bearer_from(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ")?.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The network of the request's TCP peer.
pub fn network_of(extensions: &axum::http::Extensions) -> Network {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| Network::of(addr.ip()))
        .unwrap_or(Network::Remote)
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Bearer {
            token: bearer_from(&parts.headers),
            network: network_of(&parts.extensions),
        })
    }
}

/// The subprotocol a browser offers on `/ws` (and the server selects).
pub const WS_PROTOCOL: &str = "molecule";

/// Read buffer of a WebSocket the platform serves. Its library zeroes the
/// whole buffer before every read attempt (128 KiB by default), and an
/// events socket is polled for reads each time an event wakes it: with
/// 1 000 clients at 200 events/s that memset was a sixth of the platform's
/// CPU. Clients send little (pongs, close, keystrokes); a larger frame
/// just takes more reads.
pub const WS_READ_BUFFER: usize = 4 * 1024;

const WS_BEARER_PREFIX: &str = "molecule.bearer.";

/// The bearer of a `/ws` upgrade. Browsers cannot set headers on a
/// WebSocket, so the canvas offers its token as a second subprotocol,
/// `molecule.bearer.<base64url of the token>`, beside `molecule`. An
/// `Authorization` header wins when both are present.
pub struct WsBearer(pub Bearer);

impl<S: Send + Sync> FromRequestParts<S> for WsBearer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_from(&parts.headers).or_else(|| subprotocol_token(&parts.headers));
        Ok(WsBearer(Bearer {
            token,
            network: network_of(&parts.extensions),
        }))
    }
}

fn subprotocol_token(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WS_BEARER_PREFIX))
        .and_then(|b64| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|t| !t.is_empty())
}

/// `X-Workspace-ID`, when present and non-empty.
pub struct CallerHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CallerHeader {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let v = parts
            .headers
            .get(crate::app::a2a::X_WORKSPACE_ID)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        Ok(CallerHeader(v))
    }
}

/// The `:id` of a workspace route. A non-UUID names no workspace, so it is
/// answered like an unknown id: 404 `workspace not found`.
pub struct WorkspacePath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for WorkspacePath {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::not_found("workspace not found"))?;
        raw.parse::<Uuid>()
            .map(WorkspacePath)
            .map_err(|_| AppError::not_found("workspace not found"))
    }
}

/// `/workspaces/{id}/…/{rest}`: the workspace id (a non-UUID names no
/// workspace: 404) and the rest as given.
pub fn workspace_and(raw: (String, String)) -> Result<(Uuid, String), AppError> {
    let ws = raw
        .0
        .parse()
        .map_err(|_| AppError::not_found("workspace not found"))?;
    Ok((ws, raw.1))
}

/// A header's value when present and printable.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use base64::Engine;

    fn offered(protocols: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocols).unwrap(),
        );
        h
    }

    #[test]
    fn a_browser_offers_its_token_as_a_subprotocol() {
        let token = "tok/with+chars=";
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token);
        let h = offered(&format!("molecule, molecule.bearer.{b64}"));
        assert_eq!(subprotocol_token(&h).as_deref(), Some(token));
        // Nothing offered, only `molecule`, garbage or an empty token: none.
        assert_eq!(subprotocol_token(&HeaderMap::new()), None);
        assert_eq!(subprotocol_token(&offered("molecule")), None);
        assert_eq!(subprotocol_token(&offered("molecule.bearer.!!")), None);
        assert_eq!(subprotocol_token(&offered("molecule.bearer.")), None);
    }
}
