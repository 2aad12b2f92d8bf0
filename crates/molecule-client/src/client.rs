//! The [`Client`] handle and its plumbing: base URL, identity headers, the
//! raw request escape hatch and the typed call helper the endpoint methods are
//! built on. It owns no endpoint knowledge (see `endpoints.rs`) and no
//! WebSocket logic (see `events.rs`).

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ClientError;

/// How long to wait for a TCP connection (HTTP and WebSocket).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A typed client of one Molecule platform. Cheap to clone: the connection
/// pool is shared and the identity is a few short strings.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
    workspace_id: Option<String>,
    extra_headers: Vec<(String, String)>,
}

/// Installs rustls' `ring` provider as the process default, once (later
/// calls, and a provider installed by someone else, are fine). This crate
/// turns on reqwest's TLS without a provider of its own, so in any process
/// that links it every `reqwest::Client` and `wss://` connection needs one
/// installed first: [`Client::new`] and [`Client::subscribe`] call this;
/// code that builds its own `reqwest::Client` calls it before.
pub fn install_crypto_provider() {
    // Err means a provider is already installed: exactly what is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// A client of the platform at `base_url` (`http://host:port` or
    /// `https://…`, optionally with a path prefix), with no token and no
    /// workspace identity. HTTPS trusts the system's roots.
    pub fn new(base_url: impl Into<String>) -> Client {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // Redirects are part of the contract (trailing slashes answer
            // 301/307); callers must see them, not have them followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client with a crypto provider and no proxies always builds");
        Client {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token: None,
            workspace_id: None,
            extra_headers: Vec::new(),
        }
    }

    /// A client of the platform at `base_url` that sends its requests through
    /// `http`, e.g. one built with its own TLS roots (the agent's, in a
    /// FROM-scratch image with no CA files). Redirects follow whatever policy
    /// `http` was built with; [`Client::new`] turns them off.
    pub fn with_http_client(base_url: impl Into<String>, http: reqwest::Client) -> Client {
        Client {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token: None,
            workspace_id: None,
            extra_headers: Vec::new(),
        }
    }

    /// Sends `Authorization: Bearer <token>` on every request when set.
    pub fn with_token(mut self, token: Option<String>) -> Client {
        self.token = token;
        self
    }

    /// Sends `X-Workspace-ID: <id>` on every request (and the WebSocket
    /// handshake) when set: the caller identity of discovery and `/ws`.
    pub fn with_workspace_id<T: ToString>(mut self, id: Option<T>) -> Client {
        self.workspace_id = id.map(|id| id.to_string());
        self
    }

    /// Sends an extra header on every request, e.g. `Origin` or
    /// `X-Molecule-Org-Id`. A malformed name or value fails the request.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Client {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Starts a request that bypasses all typing: any method, path, headers
    /// and body bytes; the answer comes back whatever its status.
    pub fn raw(&self, method: Method, path: impl Into<String>) -> RawRequest<'_> {
        RawRequest {
            client: self,
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Sends `body` as JSON (or nothing) and returns the answer whatever its
    /// status: the short form of [`Client::raw`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<RawResponse, ClientError> {
        let request = self.raw(method, path);
        match body {
            Some(body) => request.json(body).send().await,
            None => request.send().await,
        }
    }

    /// The identity headers (token, workspace id, extras) every request and
    /// the WebSocket handshake carry.
    pub(crate) fn default_headers(&self) -> Result<HeaderMap, ClientError> {
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            insert_header(&mut headers, "authorization", &format!("Bearer {token}"))?;
        }
        if let Some(id) = &self.workspace_id {
            insert_header(&mut headers, "x-workspace-id", id)?;
        }
        for (name, value) in &self.extra_headers {
            insert_header(&mut headers, name, value)?;
        }
        Ok(headers)
    }

    /// Sends a typed request and decodes a 2xx answer as `T`; any other
    /// status becomes [`ClientError::Http`].
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let context = format!("{method} {path}");
        let response = self
            .send_typed(method, path, body)
            .await?
            .error_for_status()?;
        response.decode(&context)
    }

    /// Sends a typed request and returns the raw answer, leaving the status to
    /// the caller.
    pub(crate) async fn send_typed(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<RawResponse, ClientError> {
        let request = self.raw(method, path);
        match body {
            Some(body) => {
                let body = serde_json::to_value(body).map_err(|e| {
                    ClientError::InvalidRequest(format!("request body is not JSON: {e}"))
                })?;
                request.json(&body).send().await
            }
            None => request.send().await,
        }
    }
}

/// The body of a request that has none.
pub(crate) const NO_BODY: Option<&()> = None;

/// Percent-encode a query value (RFC 3986 unreserved characters pass).
pub(crate) fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A request under construction; see [`Client::raw`].
#[derive(Debug)]
pub struct RawRequest<'a> {
    client: &'a Client,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl RawRequest<'_> {
    /// Adds a header, replacing the client's default of the same name.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `body` serialised as JSON with `Content-Type: application/json`.
    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Sends these exact bytes (set a content type with [`RawRequest::header`]).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub async fn send(self) -> Result<RawResponse, ClientError> {
        self.send_streaming().await?.collect().await
    }

    /// Sends and returns once the answer's headers arrived; the body is
    /// read piece by piece with [`StreamingResponse::chunk`] (an SSE
    /// stream, a followed log).
    pub async fn send_streaming(self) -> Result<StreamingResponse, ClientError> {
        let mut headers = self.client.default_headers()?;
        for (name, value) in &self.headers {
            insert_header(&mut headers, name, value)?;
        }
        let url = format!("{}{}", self.client.base_url, self.path);
        let mut request = self.client.http.request(self.method, url).headers(headers);
        if let Some(body) = self.body {
            request = request.body(body);
        }
        let response = request.send().await?;
        Ok(StreamingResponse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            response,
        })
    }
}

/// An answer whose body is still arriving; see [`RawRequest::send_streaming`].
#[derive(Debug)]
pub struct StreamingResponse {
    pub status: u16,
    pub headers: HeaderMap,
    response: reqwest::Response,
}

impl StreamingResponse {
    /// A header's value, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next piece of the body as it came off the wire; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self.response.chunk().await?.map(|b| b.to_vec()))
    }

    /// Reads the rest of the body.
    pub async fn collect(self) -> Result<RawResponse, ClientError> {
        let body = self.response.bytes().await?.to_vec();
        Ok(RawResponse {
            status: self.status,
            headers: self.headers,
            body,
        })
    }
}

/// An answer as it came off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; `Null` when empty, an error when not JSON.
    pub fn json(&self) -> Result<Value, ClientError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        self.decode("response body")
    }

    /// This answer when its status is 2xx, else [`ClientError::Http`].
    pub fn error_for_status(self) -> Result<RawResponse, ClientError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(ClientError::from_http(self.status, &self.body))
        }
    }

    pub(crate) fn decode<T: DeserializeOwned>(&self, context: &str) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::decode(context, &self.body, e))
    }
}

fn insert_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), ClientError> {
    let header_name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ClientError::InvalidRequest(format!("invalid header name {name:?}")))?;
    let header_value = HeaderValue::from_str(value)
        .map_err(|_| ClientError::InvalidRequest(format!("invalid value for header {name:?}")))?;
    headers.insert(header_name, header_value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_loses_trailing_slashes() {
        for (given, want) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("http://h/prefix//", "http://h/prefix"),
        ] {
            assert_eq!(Client::new(given).base_url(), want);
        }
    }

    #[test]
    fn identity_headers_are_sent_only_when_set() {
        let anonymous = Client::new("http://h").default_headers().unwrap();
        assert!(anonymous.is_empty());

        let id: uuid::Uuid = "3f1c0b7e-1234-4000-8000-000000000000".parse().unwrap();
        let agent = Client::new("http://h")
            .with_token(Some("tok".into()))
            .with_workspace_id(Some(id))
            .with_header("Origin", "http://localhost:3000");
        let headers = agent.default_headers().unwrap();
        assert_eq!(headers["authorization"], "Bearer tok");
        assert_eq!(headers["x-workspace-id"], id.to_string().as_str());
        assert_eq!(headers["origin"], "http://localhost:3000");

        let cleared = agent.with_token(None).with_workspace_id(None::<String>);
        assert_eq!(cleared.default_headers().unwrap().len(), 1);
    }

    #[test]
    fn malformed_headers_are_request_errors() {
        let err = Client::new("http://h")
            .with_header("bad name", "v")
            .default_headers()
            .unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest(_)), "{err:?}");
        let err = Client::new("http://h")
            .with_token(Some("a\nb".into()))
            .default_headers()
            .unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn only_2xx_passes_error_for_status() {
        let response = |status| RawResponse {
            status,
            headers: HeaderMap::new(),
            body: br#"{"error":"x"}"#.to_vec(),
        };
        assert!(response(200).error_for_status().is_ok());
        assert!(response(204).error_for_status().is_ok());
        for status in [301, 404, 409, 500] {
            assert_eq!(
                response(status).error_for_status().unwrap_err().status(),
                Some(status)
            );
        }
    }
}
