//! `tcps`: TLS over TCP with rustls (ring provider). Certificates are verified by default
//! against the webpki root set; [`client_config_with_roots`] builds a configuration that trusts
//! other roots (a private CA), and `Client::set_tls_config` installs any rustls configuration.
//!
//! The handshake runs when connecting; afterwards the I/O thread encrypts what it writes and
//! decrypts what the reader thread read, so the transport filter sees plaintext both ways
//! (seeds: "Transport filter": monitor traffic before encryption and after decryption).

use std::io::{self, Read, Write};
use std::sync::Arc;

use amps_core::uri::Host;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::error::{Error, ErrorKind, Result};

fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::with_source(ErrorKind::Unknown, "TLS provider", e))
}

/// The default `tcps` configuration: server certificates verified against the webpki roots
/// (the Mozilla set), no client certificate.
pub fn default_client_config() -> Result<Arc<ClientConfig>> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(Arc::new(
        builder()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// A `tcps` configuration that trusts exactly `roots` (DER certificates, e.g. a private CA).
pub fn client_config_with_roots(
    roots: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<Arc<ClientConfig>> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store
            .add(cert)
            .map_err(|e| Error::with_source(ErrorKind::Usage, "invalid root certificate", e))?;
    }
    Ok(Arc::new(
        builder()?
            .with_root_certificates(store)
            .with_no_client_auth(),
    ))
}

/// The name the server's certificate must carry.
pub(crate) fn server_name(host: &Host<'_>) -> Result<ServerName<'static>> {
    match *host {
        Host::Ipv4(a) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(a).into())),
        Host::Ipv6(a) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(a).into())),
        Host::Name(n) => ServerName::try_from(n.to_owned()).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidUri,
                format!("`{n}` is not a TLS server name"),
                e,
            )
        }),
    }
}

/// Run the handshake on `stream` (which has a read timeout for it).
pub(crate) fn handshake<S: Read + Write>(
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    stream: &mut S,
) -> io::Result<ClientConnection> {
    let mut tls = ClientConnection::new(config, name).map_err(io::Error::other)?;
    while tls.is_handshaking() {
        tls.complete_io(stream)?;
    }
    // Send what the handshake left (e.g. the client's Finished in TLS 1.3 is already out; a
    // session ticket acknowledgement may not be).
    while tls.wants_write() {
        tls.write_tls(stream)?;
    }
    Ok(tls)
}

/// Decrypt `cipher` (bytes read from the socket) into `plain`. Returns false once the peer
/// sent close_notify (the connection is over).
pub(crate) fn decrypt(
    tls: &mut ClientConnection,
    mut cipher: &[u8],
    plain: &mut Vec<u8>,
) -> io::Result<bool> {
    let mut open = true;
    while !cipher.is_empty() {
        let n = tls.read_tls(&mut cipher)?;
        tls.process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        loop {
            let start = plain.len();
            plain.resize(start + 16 * 1024, 0);
            match tls.reader().read(&mut plain[start..]) {
                Ok(0) => {
                    plain.truncate(start);
                    open = false;
                    break;
                }
                Ok(k) => plain.truncate(start + k),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    plain.truncate(start);
                    break;
                }
                Err(e) => {
                    plain.truncate(start);
                    return Err(e);
                }
            }
        }
        if n == 0 && !cipher.is_empty() {
            // rustls refused input without making room: its buffer is full of undecodable
            // data, which `process_new_packets` would have reported.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS input stalled",
            ));
        }
    }
    Ok(open)
}
