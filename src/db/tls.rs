//! TLS to PostgreSQL without OpenSSL: an in-process rustls tunnel in front of libpq.
//!
//! Writ's libpq is bundled without a TLS library (`pq-sys` `bundled_without_openssl`), so it
//! cannot encrypt. For each new pooled connection Writ instead:
//!
//! 1. opens TCP to the server named in `database.url` and sends PostgreSQL's `SSLRequest`
//!    (protocol message, PostgreSQL docs "Message Formats": length 8, code 80877103); a server
//!    that answers `N` has TLS off, and the connection fails saying so;
//! 2. does the rustls handshake (TLS 1.2 or 1.3) with the roots of `database.tls.ca_file` and
//!    the URL's host name, checked as `database.tls.mode` says (libpq's `sslmode` meanings);
//! 3. binds a Unix socket in a fresh directory only Writ's user can enter (mode 0700), lets
//!    libpq connect to it (`host=<dir>`, `sslmode=disable`), removes it once accepted, and
//!    pipes bytes between the two until either side closes.
//!
//! libpq then speaks the ordinary protocol, authentication included, inside the tunnel. What
//! this costs: channel binding (`SCRAM-SHA-256-PLUS`) is not available, since libpq does not
//! see the TLS session (SCRAM-SHA-256 without it still never sends the password); the server
//! sees one TLS client, so a client certificate for PostgreSQL's `cert` authentication is not
//! supported; and every byte crosses one more local socket.
//!
//! The tunnels run on one small tokio runtime of their own, so that pooled connections made on
//! any thread (the server's blocking pool, a CLI command with no runtime) share it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use diesel::{Connection, ConnectionError, PgConnection};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::settings::{DatabaseTlsMode, DatabaseTlsSettings};

/// PostgreSQL's `SSLRequest`: length 8, then the request code 80877103 (1234 << 16 | 5679).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The socket file name libpq looks for in a socket directory for port 5432.
const SOCKET_PORT: u16 = 5432;

/// What the tunnel needs to reach and check one PostgreSQL server.
pub struct PgTls {
    mode: DatabaseTlsMode,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    ca_file: String,
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTls")
            .field("mode", &self.mode)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// What a successful handshake agreed, for `writ doctor`.
#[derive(Debug, Clone)]
pub struct Negotiated {
    /// `TLSv1_3` or `TLSv1_2`.
    pub protocol: String,
    /// The cipher suite.
    pub cipher_suite: String,
}

impl PgTls {
    /// The tunnel for `url` under `settings`, or `None` when TLS is off. Fails, naming the
    /// setting, on an unusable CA file or a URL whose server cannot be tunnelled to (several
    /// hosts, a Unix socket, `host=` in the query).
    pub fn from_settings(
        url: &str,
        settings: &DatabaseTlsSettings,
    ) -> Result<Option<Self>, String> {
        if settings.mode == DatabaseTlsMode::Disable {
            return Ok(None);
        }
        let (host, port) = server_of(url)?;
        let server_name = ServerName::try_from(host.clone()).map_err(|_| {
            format!("database.url: `{host}` is neither a DNS name nor an IP address, so TLS cannot check it")
        })?;
        let provider = crate::pki::provider();
        let verifier: Arc<dyn ServerCertVerifier> = match settings.mode {
            DatabaseTlsMode::Disable | DatabaseTlsMode::Require => {
                Arc::new(AnyCertificate(provider.clone()))
            }
            DatabaseTlsMode::VerifyCa | DatabaseTlsMode::VerifyFull => {
                let roots = crate::pki::read_roots("database.tls.ca_file", &settings.ca_file)
                    .map_err(|e| e.to_string())?;
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider.clone(),
                )
                .build()
                .map_err(|e| format!("database.tls.ca_file ({}): {e}", settings.ca_file))?;
                if settings.mode == DatabaseTlsMode::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("database.tls: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // PostgreSQL 17 checks the ALPN protocol when a client offers one; older servers
        // ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Some(Self {
            mode: settings.mode,
            host,
            port,
            server_name,
            config: Arc::new(config),
            ca_file: settings.ca_file.clone(),
        }))
    }

    /// The mode in force.
    pub fn mode(&self) -> DatabaseTlsMode {
        self.mode
    }

    /// `host:port` of the server.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens a libpq connection to `url` through a fresh tunnel. Errors name the cause: the
    /// server unreachable, TLS off on the server, a certificate from another CA, a certificate
    /// for another host name.
    pub fn establish(&self, url: &str, timeout: Duration) -> Result<PgConnection, ConnectionError> {
        let bad = |e: String| ConnectionError::BadConnection(e);
        let socket_dir = SocketDir::create().map_err(|e| bad(self.explain(&e)))?;
        let listener = std::os::unix::net::UnixListener::bind(socket_dir.socket())
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| bad(self.explain(&format!("cannot bind the local socket: {e}"))))?;
        let dir = socket_dir.path().to_path_buf();
        let (ready, handshake) = std::sync::mpsc::channel();
        let tls = self.handshake_task(timeout);
        runtime()
            .map_err(|e| bad(self.explain(&e)))?
            .spawn(async move {
                let stream = match tls.await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let Ok(listener) = tokio::net::UnixListener::from_std(listener) else {
                    return;
                };
                let accepted = tokio::time::timeout(timeout, listener.accept()).await;
                // Nobody else can connect once the socket is gone.
                drop(listener);
                drop(socket_dir);
                if let Ok(Ok((mut local, _))) = accepted {
                    let mut stream = stream;
                    let _ = tokio::io::copy_bidirectional(&mut local, &mut stream).await;
                }
            });
        match handshake.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(bad(self.explain(&e))),
            Err(_) => return Err(bad(self.explain("timed out"))),
        }
        PgConnection::establish(&tunnelled_url(url, &dir))
    }

    /// A handshake alone, for `writ doctor`: what was agreed, or why it failed.
    pub fn probe(&self, timeout: Duration) -> Result<Negotiated, String> {
        let tls = self.handshake_task(timeout);
        let (tx, rx) = std::sync::mpsc::channel();
        runtime()?.spawn(async move {
            let _ = tx.send(tls.await.map(|(_, n)| n));
        });
        rx.recv_timeout(timeout + Duration::from_secs(1))
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r)
            .map_err(|e| self.explain(&e))
    }

    fn explain(&self, reason: &str) -> String {
        format!(
            "TLS to PostgreSQL at {} (database.tls.mode = \"{}\"): {reason}",
            self.server(),
            self.mode.as_str()
        )
    }

    /// The TCP connection, `SSLRequest` and handshake, as a future for the tunnel runtime.
    fn handshake_task(
        &self,
        timeout: Duration,
    ) -> impl std::future::Future<
        Output = Result<
            (
                tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
                Negotiated,
            ),
            String,
        >,
    > + Send
    + 'static {
        let host = self.host.clone();
        let port = self.port;
        let name = self.server_name.clone();
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let ca_file = self.ca_file.clone();
        async move {
            let work = async {
                let mut tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot reach the server: {e}"))?;
                let _ = tcp.set_nodelay(true);
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                tcp.write_all(&SSL_REQUEST)
                    .await
                    .map_err(|e| format!("cannot send SSLRequest: {e}"))?;
                let mut answer = [0u8; 1];
                tcp.read_exact(&mut answer)
                    .await
                    .map_err(|e| format!("no answer to SSLRequest: {e}"))?;
                match answer[0] {
                    b'S' => {}
                    b'N' => {
                        return Err(
                            "the server does not accept TLS connections (its `ssl` setting is off)"
                                .to_owned(),
                        );
                    }
                    other => {
                        return Err(format!(
                            "unexpected answer {other:#04x} to SSLRequest: is this a PostgreSQL server?"
                        ));
                    }
                }
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| describe_handshake_error(&e, &host, &ca_file))?;
                let (_, session) = stream.get_ref();
                let negotiated = Negotiated {
                    protocol: session
                        .protocol_version()
                        .map_or_else(|| "unknown".to_owned(), |v| format!("{v:?}")),
                    cipher_suite: session
                        .negotiated_cipher_suite()
                        .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite())),
                };
                Ok((stream, negotiated))
            };
            tokio::time::timeout(timeout, work)
                .await
                .map_err(|_| format!("no TLS session within {} s", timeout.as_secs()))?
        }
    }
}

/// Why the handshake failed, in words an operator can act on.
fn describe_handshake_error(e: &std::io::Error, host: &str, ca_file: &str) -> String {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => format!(
            "the server's certificate is not signed by a CA in database.tls.ca_file ({ca_file}): wrong CA ({e})"
        ),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => format!(
            "the server's certificate is not valid for the host name `{host}` in database.url: wrong host name ({e})"
        ),
        Some(rustls::Error::InvalidCertificate(c)) => {
            format!("the server's certificate was refused: {c:?}")
        }
        Some(other) => format!("TLS handshake failed: {other}"),
        None => format!("TLS handshake failed: {e}"),
    }
}

/// The host and port of a `postgres://` URL, for the tunnel's TCP connection.
fn server_of(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or("database.url: not a postgres:// URL")?;
    let (authority, query) = {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let query = rest.split_once('?').map_or("", |(_, q)| q);
        (&rest[..end], query)
    };
    if let Some(param) = query
        .split('&')
        .map(|p| p.split('=').next().unwrap_or(p))
        .find(|k| matches!(*k, "host" | "hostaddr" | "port" | "service"))
    {
        return Err(format!(
            "database.url: with database.tls the server must be in the URL's host:port, not in a `{param}=` parameter"
        ));
    }
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.contains(',') {
        return Err("database.url: with database.tls the URL must name one server (several hosts are not supported)".into());
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or("database.url: an IPv6 host lacks its closing `]`")?;
        (addr.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() || host.starts_with('%') || host.starts_with('/') {
        return Err("database.url: with database.tls the URL must name a TCP host (a Unix socket needs no TLS)".into());
    }
    let port = match port {
        None | Some("") => 5432,
        Some(p) => p
            .parse()
            .map_err(|_| format!("database.url: port `{p}` is not a number"))?,
    };
    Ok((host, port))
}

/// `url` pointed at the tunnel's socket directory instead of the server (libpq keeps the last
/// value of a parameter given twice, so the query's `host` and `port` win over the URL's).
fn tunnelled_url(url: &str, socket_dir: &Path) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}host={}&port={SOCKET_PORT}&sslmode=disable",
        socket_dir.display()
    )
}

/// A directory only this process's user can enter, holding the one-shot socket; removed when
/// dropped.
struct SocketDir(PathBuf);

impl SocketDir {
    fn create() -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt;
        let mut random = [0u8; 12];
        getrandom::fill(&mut random)
            .map_err(|e| format!("no randomness for the socket name: {e}"))?;
        let path = std::env::temp_dir().join(format!("writ-pg-{}", hex::encode(random)));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| {
                format!(
                    "cannot create the tunnel's socket folder {}: {e}",
                    path.display()
                )
            })?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn socket(&self) -> PathBuf {
        self.0.join(format!(".s.PGSQL.{SOCKET_PORT}"))
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The runtime the tunnels run on: two threads, made on first use, never dropped.
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("writ-pg-tls")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the TLS tunnel's runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `require`: any certificate, but the handshake's signatures are still checked (so the
/// session is with the holder of the certificate's key, whoever that is).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain to the configured roots is checked, the host name is not. rustls
/// checks the name only after the chain verified, so a name error means the chain is good.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_server_is_read_from_the_url() {
        assert_eq!(
            server_of("postgres://u:p@db.example:6432/writ?x=1").unwrap(),
            ("db.example".to_owned(), 6432)
        );
        assert_eq!(
            server_of("postgresql://u@[::1]/writ").unwrap(),
            ("::1".to_owned(), 5432)
        );
        assert_eq!(
            server_of("postgres://127.0.0.1").unwrap(),
            ("127.0.0.1".to_owned(), 5432)
        );
        assert!(
            server_of("postgres://a,b/writ")
                .unwrap_err()
                .contains("one server")
        );
        assert!(
            server_of("postgres://u@h/db?host=/run")
                .unwrap_err()
                .contains("`host=`")
        );
        assert!(
            server_of("postgres:///db")
                .unwrap_err()
                .contains("TCP host")
        );
    }

    #[test]
    fn the_tunnelled_url_points_libpq_at_the_socket_without_tls() {
        assert_eq!(
            tunnelled_url("postgres://u@h:1/db", Path::new("/tmp/x")),
            "postgres://u@h:1/db?host=/tmp/x&port=5432&sslmode=disable"
        );
        assert_eq!(
            tunnelled_url("postgres://u@h/db?application_name=w", Path::new("/tmp/x")),
            "postgres://u@h/db?application_name=w&host=/tmp/x&port=5432&sslmode=disable"
        );
    }
}
