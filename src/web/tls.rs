//! TLS for `writ serve`: a rustls server configuration from the PEM files of `[server.tls]`,
//! and mutual TLS on the path prefixes that require it (the e-Evidence interface).
//!
//! With `server.tls.client_ca_file`, the listener asks every client for a certificate from that
//! CA but lets clients without one in (browsers have none); a certificate that is presented
//! must chain to the CA, or the handshake fails. [`on_connect`] records the verified
//! certificate's fingerprints in the connection's data; [`require_pinned_peer`] then refuses a
//! request on a protected prefix unless they match an active authority's unrevoked pin (looked
//! up on every request, so a revocation takes effect on open connections too), and puts the
//! [`PeerAuthority`] in the request for handlers to extract; a request without a certificate
//! passes only with an `Authorization` header, which its handler checks (the request token).
//!
//! One TLS stack (rustls with the ring provider, as reqwest and lettre already use), TLS 1.2
//! and 1.3 only (rustls implements nothing older), HTTP/1.1 over it. Every problem with the
//! files stops start-up with a message naming the file: a server that cannot prove its
//! identity must not come up half-configured.

use std::any::Any;
use std::future::{Ready, ready};
use std::path::Path;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;

use super::problem::Problem;
use crate::authority::pins::{self, PinKind};
use crate::db::Db;
use crate::pki::Fingerprints;
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
        .with_client_cert_verifier(client_verifier(settings)?)
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

/// The client-certificate verifier of `settings`: none without `client_ca_file`; otherwise
/// certificates from that CA are asked for, checked when presented, and optional.
fn client_verifier(settings: &TlsSettings) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    const CA: &str = "server.tls.client_ca_file";
    if !settings.client_auth() {
        return Ok(rustls::server::WebPkiClientVerifier::no_client_auth());
    }
    let roots =
        crate::pki::read_roots(CA, &settings.client_ca_file).map_err(|e| TlsError::File {
            setting: CA,
            path: e.path,
            reason: e.reason,
        })?;
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        crate::pki::provider(),
    )
    // Browsers and the authorities' API clients have no certificate: the protected prefixes
    // are refused per request instead (require_pinned_peer).
    .allow_unauthenticated()
    .build()
    .map_err(|e| TlsError::File {
        setting: CA,
        path: settings.client_ca_file.clone(),
        reason: format!("no usable client CA: {e}"),
    })
}

/// The verified client certificate of a connection, as its pinnable fingerprints.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Fingerprints);

/// For `HttpServer::on_connect`: records the fingerprints of the client certificate that the
/// handshake verified, if any.
pub fn on_connect(conn: &dyn Any, data: &mut Extensions) {
    let Some(tls) = conn
        .downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>()
    else {
        return;
    };
    let (_, session) = tls.get_ref();
    let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) else {
        return;
    };
    match crate::pki::fingerprints(leaf.as_ref()) {
        Ok(prints) => {
            data.insert(PeerCertificate(prints));
        }
        // rustls verified it, so this does not happen; without fingerprints it is refused.
        Err(e) => tracing::warn!(error = %e, "a verified client certificate did not parse"),
    }
}

/// The path prefixes that require a pinned client certificate (`server.tls`), as app data.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    prefixes: Vec<String>,
}

impl ClientAuth {
    /// The protected prefixes of `settings`; none unless client certificates are asked for.
    pub fn from_settings(settings: &TlsSettings) -> Self {
        Self {
            prefixes: if settings.client_auth() {
                settings.client_auth_prefixes.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// Whether `path` needs a pinned client certificate.
    pub fn protects(&self, path: &str) -> bool {
        self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// The authority a request's verified, pinned client certificate stands for: present only on
/// the protected prefixes, where [`require_pinned_peer`] put it. As an extractor, a request
/// without one is refused with 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAuthority {
    /// The authority's registry id.
    pub authority_id: String,
    /// The pin that matched (lowercase hex SHA-256).
    pub pin: String,
    /// Whether the pin is of the certificate or of its key.
    pub kind: PinKind,
}

fn no_certificate() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "client-certificate-required",
        "A client certificate is required",
    )
    .detail(
        "This path requires mutual TLS: connect with a client certificate issued by the CA this \
         server trusts and pinned to your authority.",
    )
}

impl FromRequest for PeerAuthority {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<PeerAuthority>()
                .cloned()
                .ok_or_else(|| no_certificate().into()),
        )
    }
}

/// Middleware: on a protected prefix, a request passes over a connection whose verified client
/// certificate matches an active authority's unrevoked pin (with the [`PeerAuthority`] in it),
/// or without a certificate when it carries an `Authorization` header, for the handler to
/// check (the request token, the alternative); 401 with neither, 403 with a certificate that
/// no such pin matches (a token does not rescue it). Other paths pass untouched.
pub async fn require_pinned_peer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let protected = req
        .app_data::<web::Data<ClientAuth>>()
        .is_some_and(|c| c.protects(req.path()));
    if !protected {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(PeerCertificate(prints)) = req.conn_data::<PeerCertificate>().cloned() else {
        // Without a certificate, a request carrying a request token goes on to its handler,
        // which checks the token (the alternative the e-Evidence endpoints keep); anything
        // else is refused here.
        if req
            .headers()
            .contains_key(actix_web::http::header::AUTHORIZATION)
        {
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        return Ok(refuse(req, no_certificate()));
    };
    let Some(db) = req.app_data::<web::Data<Db>>().cloned() else {
        let internal = Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
        );
        return Ok(refuse(req, internal));
    };
    let found = db
        .run(move |c| {
            pins::peer_for(c, &prints.certificate, &prints.spki)
                .map_err(|e| crate::db::DbError::Setup(e.to_string()))
        })
        .await;
    match found {
        Ok(Some(peer)) => {
            req.extensions_mut().insert(PeerAuthority {
                authority_id: peer.authority_id,
                pin: peer.pin,
                kind: peer.kind,
            });
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        Ok(None) => {
            let unpinned = Problem::new(
                StatusCode::FORBIDDEN,
                "client-certificate-not-pinned",
                "The client certificate is not pinned to an active authority",
            )
            .detail(
                "The certificate was issued by a trusted CA, but no active authority holds an \
                 unrevoked pin of it or of its key (`writ authority pin`).",
            );
            Ok(refuse(req, unpinned))
        }
        Err(e) => {
            tracing::warn!(error = %e, "client certificate pin lookup failed");
            let down = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The database is unavailable",
            );
            Ok(refuse(req, down))
        }
    }
}

/// The problem as this request's response, so that the outer layers (security headers,
/// metrics) still see it.
fn refuse(req: ServiceRequest, problem: Problem) -> ServiceResponse<BoxBody> {
    req.into_response(problem.response())
}
