//! Certificates for Writ's TLS peers: PEM files read with errors that name the setting and the
//! file, the pinned identities of a peer certificate (SHA-256 of the certificate or of its
//! SubjectPublicKeyInfo), and the outbound HTTPS client that presents a client certificate.
//!
//! A leaf: it uses nothing of Writ's, so the settings tree can own [`OutboundTls`] and both the
//! database layer (TLS to PostgreSQL) and the web layer (mutual TLS) can share the helpers.
//! One TLS stack: rustls with the ring provider, as everywhere else in Writ (no OpenSSL, no
//! native-tls).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a certificate, key or CA file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting} ({path}): {reason}")]
pub struct PemError {
    /// The setting naming the file.
    pub setting: String,
    /// The file.
    pub path: String,
    /// What is wrong with it (never the file's content).
    pub reason: String,
}

fn pem_error(setting: &str, path: &str, reason: impl Into<String>) -> PemError {
    PemError {
        setting: setting.to_owned(),
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Reads the file that `setting` names.
pub fn read_file(setting: &str, path: &str) -> Result<Vec<u8>, PemError> {
    std::fs::read(Path::new(path))
        .map_err(|e| pem_error(setting, path, format!("cannot read: {e}")))
}

/// Every `CERTIFICATE` block of the PEM file `path`; at least one.
pub fn read_certificates(
    setting: &str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = read_file(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(setting, path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error(setting, path, "holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The private key of the PEM file `path` (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(setting: &str, path: &str) -> Result<PrivateKeyDer<'static>, PemError> {
    let pem = read_file(setting, path)?;
    // Never echo the key file's content: only what kind of problem it is.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        pem_error(
            setting,
            path,
            format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
        )
    })
}

/// The CA certificates of the PEM file `path` as trust anchors.
pub fn read_roots(setting: &str, path: &str) -> Result<rustls::RootCertStore, PemError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates(setting, path)? {
        roots
            .add(cert)
            .map_err(|e| pem_error(setting, path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The ring crypto provider every Writ TLS configuration uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The two identities a peer certificate can be pinned by, each the lowercase hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    /// SHA-256 of the whole certificate (DER): changes with every reissue.
    pub certificate: String,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo (DER, RFC 5280 section 4.1.2.7; the
    /// form of RFC 7469's pins): stays while the key pair does.
    pub spki: String,
}

/// The fingerprints of a DER certificate; an error when it does not parse as X.509.
pub fn fingerprints(der: &[u8]) -> Result<Fingerprints, String> {
    let cert_der = CertificateDer::from(der);
    let cert = webpki::EndEntityCert::try_from(&cert_der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let spki = cert.subject_public_key_info();
    Ok(Fingerprints {
        certificate: hex::encode(Sha256::digest(der)),
        spki: hex::encode(Sha256::digest(spki.as_ref())),
    })
}

/// The fingerprints of the first certificate in the PEM file `path` (for `writ authority pin`).
pub fn fingerprints_of_pem_file(setting: &str, path: &str) -> Result<Fingerprints, PemError> {
    let certs = read_certificates(setting, path)?;
    fingerprints(certs[0].as_ref()).map_err(|reason| pem_error(setting, path, reason))
}

/// `[etsi.outbound_tls]`: how Writ authenticates itself, and whom it trusts, when it calls a
/// peer's HTTPS interface (the e-Evidence decentralised system's, an authority's HI-1
/// endpoint). All three files are PEM; empty strings leave the setting off.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutboundTls {
    /// CA certificates the peer's server certificate must chain to. Empty: the built-in web
    /// roots (Mozilla's, shipped inside the binary).
    pub ca_file: String,
    /// Writ's client certificate chain, its own certificate first. Empty: no client
    /// certificate (then `private_key_file` must be empty too).
    pub certificate_file: String,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key_file: String,
}

impl OutboundTls {
    /// Whether a client certificate is configured.
    pub fn presents_certificate(&self) -> bool {
        !self.certificate_file.is_empty()
    }

    /// The first field that is inconsistent, with why: a certificate without its key or the
    /// other way round.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        match (
            self.certificate_file.is_empty(),
            self.private_key_file.is_empty(),
        ) {
            (true, false) => Err((
                "certificate_file",
                "a client private key needs its certificate file",
            )),
            (false, true) => Err((
                "private_key_file",
                "a client certificate needs its private key file",
            )),
            _ => Ok(()),
        }
    }
}

/// An HTTPS client for calls out of Writ, on rustls only: it trusts the CA of
/// `settings.ca_file` (alone, when set) and presents the client certificate of
/// `settings.certificate_file` to servers that ask for one (mutual TLS). Every unusable file
/// is an error naming it, so a misconfigured transport fails at start, not at the first call.
pub fn outbound_client(
    settings: &OutboundTls,
    timeout: std::time::Duration,
) -> anyhow::Result<reqwest::Client> {
    const SECTION: &str = "etsi.outbound_tls";
    settings
        .check()
        .map_err(|(field, why)| anyhow::anyhow!("{SECTION}.{field}: {why}"))?;
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        // A redirect would carry a request signed for one URL to another.
        .redirect(reqwest::redirect::Policy::none())
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        // A client certificate or a pinned CA means the peer is to be authenticated: never
        // fall back to plain HTTP, where neither would take effect.
        .https_only(settings.presents_certificate() || !settings.ca_file.is_empty());
    if !settings.ca_file.is_empty() {
        let setting = format!("{SECTION}.ca_file");
        // Each CA is checked here, so that a bad file names itself rather than failing later.
        read_roots(&setting, &settings.ca_file)?;
        let pem = read_file(&setting, &settings.ca_file)?;
        let cas = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| pem_error(&setting, &settings.ca_file, e.to_string()))?;
        builder = builder.tls_built_in_root_certs(false);
        for ca in cas {
            builder = builder.add_root_certificate(ca);
        }
    }
    if settings.presents_certificate() {
        let cert_setting = format!("{SECTION}.certificate_file");
        let key_setting = format!("{SECTION}.private_key_file");
        // Read both first so that each problem names its own file.
        read_certificates(&cert_setting, &settings.certificate_file)?;
        read_private_key(&key_setting, &settings.private_key_file)?;
        let mut pem = read_file(&cert_setting, &settings.certificate_file)?;
        pem.push(b'\n');
        pem.extend(read_file(&key_setting, &settings.private_key_file)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            anyhow::anyhow!("{cert_setting} and {key_setting}: not a usable client identity: {e}")
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder.build()?)
}
