//! HTTPS without a reverse proxy: the configured certificate chain and key, loaded once at
//! startup (so that a bad file stops `registry serve` with a clear message instead of failing
//! every connection), and a handshake per accepted connection on that connection's own task.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use registry_core::config::Config;
use registry_core::{Error, Result};
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish the handshake: one that connects and says nothing would
/// otherwise hold its task and socket for good.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl Tls {
    /// The acceptor for the configured certificate and key, or `None` when TLS is off.
    /// Unreadable or invalid files are a configuration error (`BadRequest`, like the others).
    pub fn from_config(config: &Config) -> Result<Option<Tls>> {
        let Some((cert_path, key_path)) = config.tls_files()? else {
            return Ok(None);
        };
        let chain = CertificateDer::pem_file_iter(cert_path)
            .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|err| pem_error("tls_cert", cert_path, "CERTIFICATE", err))?;
        if chain.is_empty() {
            return Err(pem_error(
                "tls_cert",
                cert_path,
                "CERTIFICATE",
                pem::Error::NoItemsFound,
            ));
        }
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|err| pem_error("tls_key", key_path, "PRIVATE KEY", err))?;
        // An explicit provider rather than the process default: nothing else has to install
        // one, and the daemon does not depend on which providers other crates switched on.
        let mut server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|err| Error::Storage(format!("TLS setup failed: {err}")))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|err| {
                Error::bad_request(format!(
                    "tls_cert {} and tls_key {} cannot be used together: {err}",
                    cert_path.display(),
                    key_path.display()
                ))
            })?;
        // The connections are served by hyper's HTTP/1.1 only; say so rather than let a
        // client assume h2.
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
        }))
    }

    /// Completes the handshake on an accepted connection. `None` when the client failed it or
    /// took too long: logged once, and the connection is dropped, which closes it.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(err)) => {
                tracing::info!("TLS handshake with {peer} failed: {err}");
                None
            }
            Err(_) => {
                tracing::info!("TLS handshake with {peer} timed out after {HANDSHAKE_TIMEOUT:?}");
                None
            }
        }
    }
}

fn pem_error(key: &str, path: &Path, label: &str, err: pem::Error) -> Error {
    let path = path.display();
    match err {
        pem::Error::Io(err) => Error::bad_request(format!("cannot read {key} {path}: {err}")),
        pem::Error::NoItemsFound => Error::bad_request(format!(
            "{key} {path} holds no PEM {label} (-----BEGIN {label}-----)"
        )),
        other => Error::bad_request(format!("{key} {path} is not valid PEM: {other}")),
    }
}
