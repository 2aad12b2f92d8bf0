//! The TCP connector for supplied agent URLs: it resolves the host itself,
//! judges every candidate address with the [`OutboundPolicy`] and connects
//! only to an allowed one. The address judged is the address connected to
//! (nothing resolves the name again in between), which is what defeats a
//! name that points somewhere harmless when registered and at loopback
//! when called. It plugs into `hyper_rustls::HttpsConnector` in place of
//! hyper's `HttpConnector`, so TLS still verifies the URL's host name.

use hyper::Uri;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tower_service::Service;

use super::{OutboundPolicy, Refusal};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every address a host resolved to was refused by the policy. Nothing
/// was sent anywhere.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host}: {}", describe(.refused))]
pub struct Refused {
    pub host: String,
    /// Each candidate address and why it was refused.
    pub refused: Vec<(SocketAddr, Refusal)>,
}

fn describe(refused: &[(SocketAddr, Refusal)]) -> String {
    if refused.is_empty() {
        return "no address".into();
    }
    let each: Vec<String> = refused
        .iter()
        .map(|(addr, why)| format!("{addr} is {why}"))
        .collect();
    each.join("; ")
}

/// A `Service<Uri>` giving TCP streams to policy-checked addresses.
#[derive(Clone)]
pub struct CheckedConnector {
    policy: OutboundPolicy,
    /// Bounds resolving and connecting together.
    timeout: Duration,
}

impl CheckedConnector {
    pub fn new(policy: OutboundPolicy, timeout: Duration) -> Self {
        CheckedConnector { policy, timeout }
    }

    async fn connect(self, uri: Uri) -> Result<TokioIo<TcpStream>, BoxError> {
        let host = uri
            .host()
            .ok_or_else(|| std::io::Error::other("the URL has no host"))?;
        // `[::1]` in a URL is `::1` to the resolver.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let attempt = async {
            let candidates = resolve(host, port).await?;
            let (allowed, refused): (Vec<_>, Vec<_>) = candidates
                .into_iter()
                .map(|addr| (addr, self.policy.check(addr)))
                .partition(|(_, verdict)| verdict.is_ok());
            if allowed.is_empty() {
                let refused = refused
                    .into_iter()
                    .filter_map(|(addr, verdict)| verdict.err().map(|why| (addr, why)))
                    .collect();
                return Err(Box::new(Refused {
                    host: host.to_string(),
                    refused,
                }) as BoxError);
            }
            let mut last = None;
            for (addr, _) in allowed {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        // Small JSON-RPC requests: no Nagle delay.
                        let _ = stream.set_nodelay(true);
                        return Ok(TokioIo::new(stream));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last
                .map(BoxError::from)
                .unwrap_or_else(|| "no address to connect to".into()))
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or_else(|_| Err("connect timed out".into()))
    }
}

/// The addresses `host` stands for: itself when it is an IP literal, else
/// what the system resolver answers (numeric forms such as `0` or `127.1`
/// included: they are judged by the address they resolve to).
async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    Ok(tokio::net::lookup_host((host, port)).await?.collect())
}

impl Service<Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}
