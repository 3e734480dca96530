//! TLS for `writ serve`: a rustls server configuration from the PEM files of `[server.tls]`.
//!
//! One TLS stack (rustls with the ring provider, as reqwest and lettre already use), TLS 1.2
//! and 1.3 only (rustls implements nothing older), HTTP/1.1 over it. Every problem with the
//! files stops start-up with a message naming the file: a server that cannot prove its
//! identity must not come up half-configured.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::settings::TlsSettings;

/// Why the TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM block.
    #[error("{setting} ({path}): {reason}")]
    File {
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key does not belong to the certificate, or rustls refuses them.
    #[error(
        "server.tls: the private key ({key}) does not fit the certificate ({certificate}): {reason}"
    )]
    Mismatch {
        /// The certificate file.
        certificate: String,
        /// The key file.
        key: String,
        /// rustls's reason.
        reason: String,
    },
}

fn read(setting: &'static str, path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(Path::new(path)).map_err(|e| TlsError::File {
        setting,
        path: path.to_owned(),
        reason: format!("cannot read: {e}"),
    })
}

/// Builds the rustls server configuration for `settings` (which must be enabled).
pub fn server_config(settings: &TlsSettings) -> Result<rustls::ServerConfig, TlsError> {
    const CERT: &str = "server.tls.certificate_file";
    const KEY: &str = "server.tls.private_key_file";
    let cert_pem = read(CERT, &settings.certificate_file)?;
    let key_pem = read(KEY, &settings.private_key_file)?;
    let bad = |setting, path: &str, reason: String| TlsError::File {
        setting,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            bad(
                CERT,
                &settings.certificate_file,
                format!("not a PEM certificate chain: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(bad(
            CERT,
            &settings.certificate_file,
            "holds no CERTIFICATE block".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        // Never echo the key file's content: only what kind of problem it is.
        bad(
            KEY,
            &settings.private_key_file,
            format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Mismatch {
            certificate: settings.certificate_file.clone(),
            key: settings.private_key_file.clone(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        // Checks that the key is usable and is the certificate's (rustls compares the public
        // keys), so a mismatched pair fails here rather than at every handshake.
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Mismatch {
            certificate: settings.certificate_file.clone(),
            key: settings.private_key_file.clone(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
