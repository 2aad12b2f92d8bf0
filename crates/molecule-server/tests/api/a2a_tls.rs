//! The A2A proxy to `https://` agents: certificates are verified against
//! the Mozilla roots plus `MOLECULE_AGENT_CA_FILE`. The agent is a real
//! in-process `molecule-agent` behind a TLS front; the certificates are in
//! `tests/api/tls/`.

use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

use crate::a2a::{reply_text, send_body, spawn_agent, workspace_at};
use crate::{eventually, start, start_with};

/// `tests/api/tls` of the checkout the test runs in (read at run time: a
/// shared target dir may run a binary built in another checkout).
fn tls_dir() -> std::path::PathBuf {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    std::path::Path::new(&dir).join("tests/api/tls")
}

/// The test certificate authority (`tests/api/tls/ca.pem`, valid until
/// 2126) that issued `localhost.pem`.
pub(crate) fn test_ca() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let path = tls_dir().join("ca.pem");
    rustls::pki_types::CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A TLS front (certificate for `localhost`, issued by [`test_ca`]) for
/// the plain-HTTP agent at `agent_url`; returns its `https://` URL.
pub(crate) async fn tls_front(agent_url: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = tls_dir();
    let certs = CertificateDer::pem_file_iter(dir.join("localhost.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("localhost.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let backend = agent_url.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn https_agents_are_reached_over_tls_with_verified_certificates() {
    let agent = spawn_agent(Duration::ZERO).await;
    let url = tls_front(agent.url()).await;

    // A certificate from an authority nobody configured: refused, 502.
    let t = start().await;
    let (id, token) = workspace_at(&t, "untrusted", None, &url).await;
    let r = t.client.a2a(id, &send_body("hello")).await.unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        r.json().unwrap()["error"],
        "failed to reach workspace agent"
    );
    let detail = eventually(Duration::from_secs(5), || async {
        let rows = t
            .as_workspace(id, &token)
            .activity(id, "type=a2a_receive")
            .await
            .ok()?;
        rows.first()?["error_detail"].as_str().map(str::to_string)
    })
    .await
    .expect("the failed call is in the activity log");
    assert!(detail.contains("UnknownIssuer"), "{detail}");

    // The operator trusts the authority (MOLECULE_AGENT_CA_FILE).
    let t = start_with(|c| c.agent_ca_certs = test_ca()).await;
    let (id, _) = workspace_at(&t, "trusted", None, &url).await;
    for text in ["over tls", "again, on the pooled connection"] {
        let r = t.client.a2a(id, &send_body(text)).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(reply_text(&r.json().unwrap()), format!("echo: {text}"));
    }
}

/// `molecule-client` against a platform behind TLS: HTTPS calls and the
/// event WebSocket over `wss://`, trusting the system's roots (here the
/// test CA through `SSL_CERT_FILE`).
#[tokio::test]
#[allow(unsafe_code)] // set_var: see SAFETY below
async fn the_client_reaches_an_https_platform_over_https_and_wss() {
    let ca = tls_dir().join("ca.pem");
    // SAFETY: set before this test starts any TLS client; nextest runs each
    // test in a process of its own, and no other test reads the variable.
    unsafe { std::env::set_var("SSL_CERT_FILE", ca) };
    let t = start().await;
    let url = tls_front(&t.server.url()).await;
    assert!(url.starts_with("https://"));
    let client = molecule_client::Client::new(url);
    let mut events = client.subscribe().await.expect("wss:// subscription");
    let created = client
        .create_workspace(&molecule_types::dto::CreateWorkspace {
            name: "over-tls".into(),
            runtime: Some("external".into()),
            external: true,
            ..Default::default()
        })
        .await
        .expect("an HTTPS call");
    client
        .register(&molecule_types::dto::RegisterRequest {
            id: created.id.to_string(),
            url: "http://localhost:9".into(),
            agent_card: serde_json::json!({ "name": "over-tls" }),
        })
        .await
        .expect("an HTTPS registration");
    let event = events
        .next_matching(
            |e| e.workspace_id == created.id.to_string() && e.event == "WORKSPACE_ONLINE",
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .expect("an event over wss://");
    assert_eq!(event.payload["name"], "over-tls", "{}", event.payload);
}
