//! HTTPS for access from other machines: the certificate chain and key of `api.tls_cert` /
//! `api.tls_key` (PEM) served with rustls (ring provider; TLS 1.2 and 1.3, HTTP/1.1 by ALPN).
//!
//! Input: the two files. Output: a [`Tls`] acceptor that turns an accepted TCP stream into a
//! TLS stream within a deadline, or a [`TlsError`] naming the file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::TlsFiles;

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds no item of the kind needed.
    #[error("{}: {what}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was looked for in it.
        what: &'static str,
        /// What went wrong.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the pair (a key that does not match, an unsupported key type).
    #[error("{}: {source}", cert.display())]
    Refused {
        /// The certificate file.
        cert: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
}

/// A TLS acceptor for the API.
#[derive(Clone)]
pub struct Tls(TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Loads and checks the certificate chain and key.
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let chain = |source| TlsError::Pem {
            path: files.cert.clone(),
            what: "certificate chain",
            source,
        };
        let certs = CertificateDer::pem_file_iter(&files.cert)
            .map_err(chain)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(chain)?;
        if certs.is_empty() {
            return Err(chain(rustls::pki_types::pem::Error::NoItemsFound));
        }
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Pem {
            path: files.key.clone(),
            what: "private key",
            source,
        })?;
        let refused = |source| TlsError::Refused {
            cert: files.cert.clone(),
            source,
        };
        // rustls 0.23.48 deprecates its ring provider for lacking post-quantum key exchange
        // only; ring builds in seconds with cc (aws-lc takes minutes from a clean CI build).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(refused)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(refused)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls(TlsAcceptor::from(Arc::new(config))))
    }

    /// The handshake on `stream`, given up after `within` (None: failed or too slow).
    pub async fn accept(
        &self,
        stream: TcpStream,
        within: Duration,
    ) -> Option<TlsStream<TcpStream>> {
        tokio::time::timeout(within, self.0.accept(stream))
            .await
            .ok()?
            .ok()
    }
}
