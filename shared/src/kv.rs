//! Redis, where the finalize rate limit counts (`crate::rate_limit`):
//! `REDIS_URL`, else `KV_URL` (what the Vercel Marketplace's Upstash sets).
//!
//! `rediss://` is TLS on the process's one provider: rustls on *ring* with
//! the roots of [`TrustRoots`] (compiled-in, plus `SSL_CERT_FILE`). The
//! connection is ours (TCP, then tokio-rustls), handed to the `redis` crate
//! for the protocol: its own TLS support would trust either the OS store
//! (read at every connect) or one PEM instead of the compiled-in roots, and
//! would build its TLS on rustls' process-wide default provider.
//!
//! One multiplexed connection per instance, opened on first use and
//! replaced after an error, so a warm instance does not pay a TLS handshake
//! and an AUTH per finalize.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::tls::TrustRoots;

/// Where Redis is and how to log in: a parsed `redis://` or `rediss://` URL.
#[derive(Clone)]
pub struct RedisTarget {
    host: String,
    port: u16,
    /// Present for `rediss://`.
    tls: Option<Arc<rustls::ClientConfig>>,
    login: RedisConnectionInfo,
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.write_str(&self.describe())
    }
}

impl RedisTarget {
    /// Parses `url`. `rediss://` trusts `trust`'s roots and always verifies
    /// the server's certificate and name. The error says why the URL cannot
    /// be used (never echoing it: it carries the password).
    pub fn parse(url: &str, trust: &TrustRoots) -> Result<Self, String> {
        let url = url.trim();
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rediss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("redis://") {
            (false, rest)
        } else {
            let scheme = url.split_once("://").map_or("none", |(scheme, _)| scheme);
            return Err(format!(
                "the scheme must be redis:// or rediss:// (TLS), not {scheme}"
            ));
        };
        if rest.contains('#') {
            return Err(
                "a URL fragment (such as #insecure) is not supported: the server's certificate is always verified; add its CA with SSL_CERT_FILE"
                    .into(),
            );
        }
        // The `redis` crate parses the login, database and protocol; the
        // scheme is ours to act on.
        let info = format!("redis://{rest}")
            .as_str()
            .into_connection_info()
            .map_err(|e| format!("it is not a valid Redis URL ({e})"))?;
        let ConnectionAddr::Tcp(host, port) = info.addr else {
            return Err("it is not a TCP address".into());
        };
        let tls = tls.then(|| {
            ServerName::try_from(host.clone())
                .map(|_| Arc::new(trust.client_config()))
                .map_err(|_| format!("{host} is not a valid TLS server name"))
        });
        Ok(Self {
            host,
            port,
            tls: tls.transpose()?,
            login: info.redis,
        })
    }

    /// The URL without its login, for logs and messages.
    pub fn describe(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Opens a connection: TCP, the TLS handshake for `rediss://`, then the
    /// login (AUTH, SELECT). Its driver runs as a task of the current
    /// runtime. Commands time out after `response_timeout`.
    pub async fn connect(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => self.login(tcp, response_timeout).await,
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await?;
                self.login(stream, response_timeout).await
            }
        }
    }

    async fn login<S>(
        &self,
        stream: S,
        response_timeout: Duration,
    ) -> redis::RedisResult<MultiplexedConnection>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = AsyncConnectionConfig::new().set_response_timeout(response_timeout);
        let (connection, driver) =
            MultiplexedConnection::new_with_config(&self.login, stream, config).await?;
        tokio::spawn(driver);
        Ok(connection)
    }

    /// `PING`: a connection, the login and one round trip work.
    pub async fn ping(&self, timeout: Duration) -> redis::RedisResult<()> {
        let mut connection = self.connect(timeout).await?;
        let pong: String = redis::cmd("PING").query_async(&mut connection).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(redis::RedisError::from((
                redis::ErrorKind::ResponseError,
                "PING was not answered PONG",
                pong,
            )))
        }
    }
}

/// The instance's Redis, as the environment configures it.
#[derive(Clone)]
pub enum Kv {
    /// Neither `REDIS_URL` nor `KV_URL` is set: rate limits fail open.
    Unset,
    /// The variable is set to something that cannot be used. Only what needs
    /// Redis fails, with 500 CONFIGURATION_ERROR; the rest of the API serves.
    Unusable {
        variable: &'static str,
        reason: String,
    },
    Ready(Arc<KvClient>),
}

impl fmt::Debug for Kv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kv::Unset => f.write_str("Kv::Unset"),
            Kv::Unusable { variable, reason } => write!(f, "Kv::Unusable({variable}: {reason})"),
            Kv::Ready(client) => write!(f, "Kv::Ready({:?})", client.target),
        }
    }
}

impl Kv {
    /// From the configured URL (`variable` names where it came from). A
    /// refused URL is kept as [`Kv::Unusable`], never an error for the
    /// whole instance.
    pub fn new(url: Option<(&'static str, &str)>, trust: &TrustRoots) -> Self {
        match url {
            None => Kv::Unset,
            Some((variable, url)) => match RedisTarget::parse(url, trust) {
                Ok(target) => Kv::Ready(Arc::new(KvClient::new(target))),
                Err(reason) => Kv::Unusable { variable, reason },
            },
        }
    }

    /// The one cold-start line about a refused URL.
    pub fn log_cold_start(&self) {
        if let Kv::Unusable { variable, reason } = self {
            tracing::error!(
                variable,
                %reason,
                "{variable} is unusable: {reason}; the routes that need Redis (finalize) answer 500 CONFIGURATION_ERROR, the others serve"
            );
        }
    }
}

/// A [`RedisTarget`] and the instance's connection to it.
pub struct KvClient {
    target: RedisTarget,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl KvClient {
    pub fn new(target: RedisTarget) -> Self {
        Self {
            target,
            connection: tokio::sync::Mutex::default(),
        }
    }

    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// The instance's connection, opened when there is none. Callers bound
    /// the wait with their own timeout.
    pub async fn connection(
        &self,
        response_timeout: Duration,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = self.target.connect(response_timeout).await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Drops the instance's connection after an error on it: the next use
    /// opens a new one.
    pub async fn discard(&self) {
        self.connection.lock().await.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<RedisTarget, String> {
        RedisTarget::parse(url, &TrustRoots::builtin())
    }

    #[test]
    fn redis_and_rediss_urls_parse_with_their_login() {
        let target = parse("rediss://default:s%40cret@example.upstash.io:6379").unwrap();
        assert!(target.is_tls());
        assert_eq!(target.describe(), "rediss://example.upstash.io:6379");
        assert_eq!(target.login.username.as_deref(), Some("default"));
        assert_eq!(target.login.password.as_deref(), Some("s@cret"));
        let plain = parse("redis://127.0.0.1:6380/2").unwrap();
        assert!(!plain.is_tls());
        assert_eq!(plain.login.db, 2);
        assert_eq!(format!("{plain:?}"), "redis://127.0.0.1:6380");
    }

    #[test]
    fn unusable_urls_say_why_without_the_password() {
        for (url, why) in [
            ("http://x:secret@host", "scheme"),
            ("unix:///tmp/redis.sock", "scheme"),
            ("rediss://default:secret@host:6379#insecure", "fragment"),
            (
                "rediss://default:secret@host:notaport",
                "not a valid Redis URL",
            ),
            (
                "redis://default:secret@host/notadb",
                "not a valid Redis URL",
            ),
        ] {
            let error = parse(url).unwrap_err();
            assert!(error.contains(why), "{url}: {error}");
            assert!(!error.contains("secret"), "{url}: {error}");
        }
    }

    #[test]
    fn an_unusable_url_is_kept_not_raised() {
        let trust = TrustRoots::builtin();
        assert!(matches!(Kv::new(None, &trust), Kv::Unset));
        let kv = Kv::new(Some(("KV_URL", "memcached://host")), &trust);
        assert!(
            matches!(
                kv,
                Kv::Unusable {
                    variable: "KV_URL",
                    ..
                }
            ),
            "{kv:?}"
        );
        assert!(matches!(
            Kv::new(Some(("REDIS_URL", "rediss://h:1")), &trust),
            Kv::Ready(_)
        ));
    }
}
