//! Where the database is and how to reach it: `DATABASE_URL` read as libpq
//! reads it, and the TLS each `sslmode` asks for, on rustls/ring (ADR 0003).
//!
//! `sslmode` keeps libpq's meaning (as sqlx did before ADR 0011): `disable`
//! never uses TLS; `prefer` (the default) and `require` encrypt without
//! verifying the server; `verify-ca` verifies its chain and `verify-full`
//! its chain and name, against [`TrustRoots`] (plus `sslrootcert`, when the
//! URL names one). Poolers' URLs carry parameters of their own
//! (`pgbouncer=true`, `channel_binding=prefer`, ...): an unknown one is
//! logged and ignored, as libpq ignores none but sqlx did.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error as TlsError, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::tls::TrustRoots;

/// How long opening a connection (TCP, TLS, startup) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A database to connect to: the driver's settings, the TLS it needs and
/// how statements are sent to it.
#[derive(Clone)]
pub struct DbTarget {
    config: tokio_postgres::Config,
    tls: Tls,
    statements: Statements,
}

/// How statements are sent (`DATABASE_STATEMENTS`; docs/adr/0013-named-statements.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Statements {
    /// Parsed and planned on every run (Parse of the unnamed statement,
    /// Bind, Execute, Sync in one write): nothing outlives the statement,
    /// so any pooler passes it, PgBouncer 1.18 in transaction mode included.
    #[default]
    Unnamed,
    /// Prepared once per connection under a name, then only bound and
    /// executed: Postgres parses and plans each statement once per server
    /// connection instead of on every run. Only behind a pooler that keeps
    /// named statements across transactions (PgBouncer 1.21+ with
    /// `max_prepared_statements`, which Neon and so Vercel Postgres run) or
    /// none; an instance that meets a lost or clashing name falls back to
    /// `Unnamed` ([`crate::db::named_statement_refused`]).
    Named,
}

impl Statements {
    /// `DATABASE_STATEMENTS`: `unnamed` or `named`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "unnamed" => Some(Self::Unnamed),
            "named" => Some(Self::Named),
            _ => None,
        }
    }
}

#[derive(Clone)]
enum Tls {
    /// `sslmode=disable`.
    Off,
    /// TLS with this client configuration (verifying or not, per `sslmode`).
    On(Arc<rustls::ClientConfig>),
}

impl fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("DbTarget")
            .field("host", &self.config.get_hosts())
            .field("port", &self.config.get_ports())
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .field("sslmode", &self.config.get_ssl_mode())
            .field("statements", &self.statements)
            .finish()
    }
}

/// The `sslmode`s of libpq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Mode::Disable,
            "allow" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => return Err(format!("sslmode={other} is not a libpq sslmode")),
        })
    }
}

impl Tls {
    /// The TLS `mode` asks for, trusting `root_cert`'s file when given.
    fn of(mode: Mode, root_cert: Option<&str>, trust: &TrustRoots) -> Result<Self, String> {
        Ok(match mode {
            Mode::Disable => Tls::Off,
            Mode::Prefer | Mode::Require => Tls::On(Arc::new(unverified(trust))),
            Mode::VerifyCa | Mode::VerifyFull => {
                let roots = match root_cert {
                    Some(path) => roots_of_file(path)?,
                    None => trust.root_store(),
                };
                Tls::On(Arc::new(verified(roots, mode == Mode::VerifyFull)?))
            }
        })
    }
}

/// A URL parameter other than the TLS ones; an unknown one is ignored.
fn apply_parameter(
    config: &mut tokio_postgres::Config,
    key: &str,
    value: &str,
) -> Result<(), String> {
    match key {
        "application_name" => {
            config.application_name(value);
        }
        "options" => {
            config.options(value);
        }
        "host" => {
            config.host(value);
        }
        "port" => {
            let port = value
                .parse()
                .map_err(|_| format!("port={value} is not a port"))?;
            config.port(port);
        }
        "user" => {
            config.user(value);
        }
        "password" => {
            config.password(value.as_bytes());
        }
        "dbname" => {
            config.dbname(value);
        }
        other => tracing::debug!(parameter = other, "ignoring a DATABASE_URL parameter"),
    }
    Ok(())
}

impl DbTarget {
    /// Reads a `postgres://` URL. The error says which part is wrong.
    pub fn parse(url: &str, trust: &TrustRoots) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "the scheme is {:?}, not postgres:// or postgresql://",
                parsed.scheme()
            ));
        }
        let decode = |raw: &str| {
            url::form_urlencoded::parse(format!("x={raw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let mut config = tokio_postgres::Config::new();
        config.connect_timeout(CONNECT_TIMEOUT);
        let user = decode(parsed.username());
        config.user(if user.is_empty() { "postgres" } else { &user });
        if let Some(password) = parsed.password() {
            config.password(decode(password));
        }
        if let Some(host) = parsed.host_str() {
            config.host(host.trim_start_matches('[').trim_end_matches(']'));
        }
        config.port(parsed.port().unwrap_or(5432));
        let dbname = parsed.path().trim_start_matches('/');
        if !dbname.is_empty() {
            config.dbname(decode(dbname));
        }
        let mut mode = Mode::Prefer;
        let mut root_cert = None;
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "sslmode" | "ssl-mode" => mode = Mode::parse(&value)?,
                "sslrootcert" | "ssl-root-cert" => root_cert = Some(value.into_owned()),
                other => apply_parameter(&mut config, other, &value)?,
            }
        }
        let root_cert = root_cert.or_else(|| std::env::var("PGSSLROOTCERT").ok());
        let tls = Tls::of(mode, root_cert.as_deref(), trust)?;
        config.ssl_mode(match mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        });
        Ok(Self {
            config,
            tls,
            statements: Statements::Unnamed,
        })
    }

    /// The same database, its statements sent as `statements` says.
    pub fn with_statements(mut self, statements: Statements) -> Self {
        self.statements = statements;
        self
    }

    /// The same database on another port (tests put a proxy in front).
    pub fn with_port(mut self, port: u16) -> Self {
        self.config.port(port);
        self
    }

    /// The host and port, for logs and errors.
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }

    /// Opens a connection; its protocol runs in a task of its own, which
    /// [`Connection`]'s drop ends (closing the socket).
    pub(super) async fn connect(&self) -> Result<Connection, tokio_postgres::Error> {
        let (client, task) = match &self.tls {
            Tls::Off => {
                let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
                (client, tokio::spawn(drive(connection)))
            }
            Tls::On(tls) => {
                let (client, connection) = self.config.connect(MakeRustls(Arc::clone(tls))).await?;
                (client, tokio::spawn(drive(connection)))
            }
        };
        Ok(Connection {
            client,
            task: task.abort_handle(),
            prepared: (self.statements == Statements::Named).then(Mutex::default),
        })
    }
}

/// An open connection: the client, the task running its protocol, and the
/// statements prepared on it ([`Statements::Named`]).
pub(super) struct Connection {
    pub(super) client: tokio_postgres::Client,
    task: tokio::task::AbortHandle,
    /// Each statement's SQL and what preparing it on this connection gave.
    pub(super) prepared: Option<Mutex<HashMap<&'static str, tokio_postgres::Statement>>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Closes the socket now, even with answers outstanding: a server
        // or pooler sees the client gone and rolls back what it had begun.
        self.task.abort();
    }
}

async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::info!(%error, "a database connection ended");
    }
}

fn roots_of_file(path: &str) -> Result<rustls::RootCertStore, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("sslrootcert {path}: {e}"))?;
    let mut store = rustls::RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(format!("sslrootcert {path}: no certificate in it"));
    }
    Ok(store)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn verified(
    roots: rustls::RootCertStore,
    check_name: bool,
) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if check_name {
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    }
    let chain =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| e.to_string())?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Lenient {
            chain: Some(chain),
            provider: provider(),
        }))
        .with_no_client_auth())
}

fn unverified(trust: &TrustRoots) -> rustls::ClientConfig {
    let mut config = trust.client_config();
    config
        .dangerous()
        .set_certificate_verifier(Arc::new(Lenient {
            chain: None,
            provider: provider(),
        }));
    config
}

/// The two `sslmode`s that verify less than rustls does by default:
/// `verify-ca` (`chain`: the chain must lead to a trusted root, the name is
/// not checked) and `prefer`/`require` (no chain: encrypted, the server not
/// verified, libpq's meaning of these modes). Either way the handshake's
/// signatures are checked, so the session key belongs to whoever holds the
/// certificate.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(TlsError::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(TlsError::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// tokio-postgres' TLS hook on tokio-rustls.
struct MakeRustls(Arc<rustls::ClientConfig>);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&self.0)),
            name,
        })
    }
}

struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// A TLS connection to Postgres. No channel binding: SCRAM negotiates it
/// down (`channel_binding=prefer`, the default everywhere).
struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl tokio_postgres::tls::TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<DbTarget, String> {
        DbTarget::parse(url, &TrustRoots::builtin())
    }

    #[test]
    fn a_pooler_url_keeps_its_user_password_database_and_port() {
        let t = target("postgres://app.ref:p%40ss@pooler.example.com:6543/postgres?sslmode=require&pgbouncer=true").unwrap();
        assert_eq!(t.config.get_user(), Some("app.ref"));
        assert_eq!(t.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(t.config.get_dbname(), Some("postgres"));
        assert_eq!(t.describe(), "pooler.example.com:6543");
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert!(matches!(t.tls, Tls::On(_)));
    }

    #[test]
    fn sslmode_disable_uses_no_tls_and_the_default_prefers_it() {
        let off = target("postgres://u@h/db?sslmode=disable").unwrap();
        assert!(matches!(off.tls, Tls::Off));
        assert_eq!(off.config.get_ssl_mode(), SslMode::Disable);
        let default = target("postgres://u@h/db").unwrap();
        assert_eq!(default.config.get_ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn a_url_that_is_not_postgres_or_has_an_unknown_sslmode_is_refused() {
        assert!(target("mysql://u@h/db").unwrap_err().contains("scheme"));
        assert!(
            target("postgres://u@h/db?sslmode=sometimes")
                .unwrap_err()
                .contains("sslmode=sometimes")
        );
    }
}
