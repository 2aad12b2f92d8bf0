//! Trace export through the proxy's HTTP client (`molecule-telemetry`'s
//! [`Transport`]): the OTLP endpoint is the operator's, so it is dialled as
//! configured; `https://` is verified against the same roots as agents.

use async_trait::async_trait;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use bytes::Bytes;
use http_body_util::Full;
use molecule_telemetry::Transport;
use std::time::Duration;

use super::upstream::Upstream;
use super::{Endpoint, UrlOrigin};

/// How long one export may take.
const EXPORT_DEADLINE: Duration = Duration::from_secs(10);

pub struct OtlpTransport(pub Upstream);

#[async_trait]
impl Transport for OtlpTransport {
    async fn post_json(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<u16, String> {
        let endpoint = Endpoint::parse(url, UrlOrigin::Provisioned)
            .ok_or_else(|| format!("invalid OTLP endpoint {url}"))?;
        let path = endpoint
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut req = Request::new(Full::new(Bytes::from(body)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = path.parse().map_err(|e| format!("{e}"))?;
        let h = req.headers_mut();
        h.insert(header::HOST, endpoint.host.clone());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::try_from(k.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) {
                h.insert(k, v);
            }
        }
        let deadline = Some(tokio::time::Instant::now() + EXPORT_DEADLINE);
        let answer = self
            .0
            .whole(&endpoint, req, deadline)
            .await
            .map_err(|e| e.to_string())?;
        Ok(answer.status.as_u16())
    }
}
