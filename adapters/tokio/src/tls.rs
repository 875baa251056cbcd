//! TLS for `tcps` URIs (seeds: "SSL"): rustls with the ring provider, certificate
//! verification always on, the webpki roots by default and custom roots when configured.

use std::sync::Arc;

use amps_core::error_kind::ErrorKind;
use amps_core::uri::Host;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};

/// How `tcps` connections verify the server.
///
/// The default trusts the Mozilla roots shipped in `webpki-roots`. Verification cannot be
/// turned off; to trust a private CA, add its certificate:
///
/// ```
/// # fn ca_der() -> Vec<u8> { Vec::new() }
/// let tls = amps_tokio::TlsConfig::with_root_certificates([ca_der()]);
/// # let _ = tls;
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Option<Arc<rustls::ClientConfig>>,
    roots: Vec<CertificateDer<'static>>,
}

impl Default for TlsConfig {
    /// The webpki roots, verification on.
    fn default() -> Self {
        TlsConfig {
            config: None,
            roots: Vec::new(),
        }
    }
}

impl core::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("custom_config", &self.config.is_some())
            .field("extra_roots", &self.roots.len())
            .finish()
    }
}

impl TlsConfig {
    /// Trust only these DER-encoded CA certificates (instead of the webpki roots).
    pub fn with_root_certificates<I, C>(certs: I) -> TlsConfig
    where
        I: IntoIterator<Item = C>,
        C: Into<Vec<u8>>,
    {
        TlsConfig {
            config: None,
            roots: certs
                .into_iter()
                .map(|c| CertificateDer::from(c.into()))
                .collect(),
        }
    }

    /// Use a complete rustls configuration (client certificates, other verifiers, ...).
    pub fn with_rustls_config(config: Arc<rustls::ClientConfig>) -> TlsConfig {
        TlsConfig {
            config: Some(config),
            roots: Vec::new(),
        }
    }

    fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        if let Some(c) = &self.config {
            return Ok(c.clone());
        }
        let mut roots = RootCertStore::empty();
        if self.roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        } else {
            for c in &self.roots {
                roots
                    .add(c.clone())
                    .map_err(|e| Error::usage(format!("bad root certificate: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::usage(format!("TLS configuration: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// Run the handshake over `tcp`, verifying the certificate against `host`.
    pub(crate) async fn connect(
        &self,
        host: &Host<'_>,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = match host {
            Host::Name(n) => ServerName::try_from(n.to_string())
                .map_err(|e| Error::new(ErrorKind::InvalidUri, format!("TLS server name: {e}")))?,
            Host::Ipv4(a) => ServerName::IpAddress(std::net::IpAddr::V4(*a).into()),
            Host::Ipv6(a) => ServerName::IpAddress(std::net::IpAddr::V6(*a).into()),
        };
        let connector = TlsConnector::from(self.client_config()?);
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| Error::new(ErrorKind::ConnectionRefused, format!("TLS handshake: {e}")))
    }
}
