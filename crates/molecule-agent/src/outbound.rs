//! Outbound HTTP: the one place that decides how this agent's HTTP clients
//! are built, i.e. TLS or not, which crypto provider, which roots.
//!
//! rustls uses the `ring` provider, installed process-wide on first use
//! (`molecule-client` turns reqwest's TLS on without a provider). Without
//! the `tls` feature HTTPS trusts the system's roots; with it, Mozilla's
//! roots compiled into the binary plus the PEM bundle named by
//! `SSL_CERT_FILE` when set: a FROM-scratch image has no CA files to read.

/// Installs rustls' `ring` provider as the process default, once. Must run
/// before any reqwest client is built (reqwest without a provider of its
/// own panics otherwise).
pub fn install_crypto_provider() {
    molecule_client::install_crypto_provider();
}

/// A reqwest client builder with this agent's TLS set-up (see module docs).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    let builder = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    #[cfg(feature = "tls")]
    let builder = builder.tls_certs_only(trusted_roots());
    builder
}

#[cfg(feature = "tls")]
fn trusted_roots() -> Vec<reqwest::Certificate> {
    let mut roots: Vec<reqwest::Certificate> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok())
        .collect();
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        match std::fs::read(&path).map(|pem| reqwest::Certificate::from_pem_bundle(&pem)) {
            Ok(Ok(extra)) => roots.extend(extra),
            Ok(Err(e)) => {
                tracing::warn!(path = ?path, error = %e, "SSL_CERT_FILE is not a PEM bundle; ignored")
            }
            Err(e) => {
                tracing::warn!(path = ?path, error = %e, "cannot read SSL_CERT_FILE; ignored")
            }
        }
    }
    roots
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    #[test]
    fn bundled_roots_load_and_a_client_builds() {
        assert!(super::trusted_roots().len() > 100);
        assert!(super::http_client_builder().build().is_ok());
    }
}

/// Trace export over this agent's HTTP client.
pub struct OtlpTransport(pub reqwest::Client);

#[async_trait::async_trait]
impl molecule_telemetry::Transport for OtlpTransport {
    async fn post_json(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<u16, String> {
        let mut request = self
            .0
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .timeout(std::time::Duration::from_secs(10));
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }
}
