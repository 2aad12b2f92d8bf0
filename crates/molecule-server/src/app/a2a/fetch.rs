//! A `GET` of a URL someone supplied (a plugin tarball), through the
//! proxy's client: the outbound policy checks every address it dials,
//! `https://` is verified against the same roots, redirects are followed
//! (each target checked again, at most [`MAX_REDIRECTS`]), and the body is
//! read up to a cap within one deadline.

use axum::http::header;
use bytes::{Bytes, BytesMut};
use tokio::time::Instant;

use super::upstream::{self, SendError, next_chunk};
use super::{App, Endpoint, UrlOrigin};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// Why a fetch failed.
#[derive(Debug, PartialEq)]
pub enum FetchFailure {
    /// The server answered 404 (or 410).
    NotFound,
    /// The deadline passed.
    Timeout,
    /// Larger than the cap.
    TooLarge,
    /// Anything else, with what happened.
    Failed(String),
}

impl App {
    /// The body at `url`, at most `max_bytes`, by `deadline`.
    pub async fn fetch_url(
        &self,
        url: &str,
        max_bytes: u64,
        deadline: Instant,
    ) -> Result<Bytes, FetchFailure> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let endpoint = Endpoint::parse(&url, UrlOrigin::Supplied)
                .ok_or_else(|| FetchFailure::Failed(format!("not an http(s) URL: {url}")))?;
            let path = endpoint
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let mut req = upstream::get(&endpoint, &path)
                .ok_or_else(|| FetchFailure::Failed(format!("invalid URL {url}")))?;
            req.headers_mut()
                .insert(header::ACCEPT, axum::http::HeaderValue::from_static("*/*"));
            let (resp, mut lease) = match self.a2a_http.send(&endpoint, req, Some(deadline)).await {
                Ok(r) => r,
                Err(SendError::Timeout) => return Err(FetchFailure::Timeout),
                Err(e) => return Err(FetchFailure::Failed(e.to_string())),
            };
            let status = resp.status();
            if status.is_redirection() {
                let next = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .map(|l| absolute(&endpoint, l))
                    .ok_or_else(|| {
                        FetchFailure::Failed(format!("HTTP {status} without Location"))
                    })?;
                // The redirect's body is not read: the connection is not reused.
                drop(lease);
                url = next;
                continue;
            }
            if status.as_u16() == 404 || status.as_u16() == 410 {
                return Err(FetchFailure::NotFound);
            }
            if !status.is_success() {
                return Err(FetchFailure::Failed(format!("HTTP {status}")));
            }
            let declared = resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max_bytes) {
                return Err(FetchFailure::TooLarge);
            }
            let mut body = resp.into_body();
            let read = async {
                let mut buf = BytesMut::new();
                while let Some(chunk) = next_chunk(&mut body).await {
                    let chunk = chunk.map_err(FetchFailure::Failed)?;
                    if (buf.len() + chunk.len()) as u64 > max_bytes {
                        return Err(FetchFailure::TooLarge);
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(buf.freeze())
            };
            let result = match tokio::time::timeout_at(deadline, lease.drive(read)).await {
                Ok(r) => r,
                Err(_) => Err(FetchFailure::Timeout),
            };
            lease.release();
            return result;
        }
        Err(FetchFailure::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

/// A `Location` made absolute against the endpoint it came from.
fn absolute(from: &Endpoint, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme = from.uri.scheme_str().unwrap_or("http");
    let authority = from.uri.authority().map_or("", |a| a.as_str());
    if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        format!("{scheme}://{authority}/{location}")
    }
}
