//! The S3 client's HTTP(S) stack: hyper-util's pooled client over a
//! hyper-rustls connector on *ring*, trusting the Mozilla roots compiled into
//! the binary (`webpki-roots`).
//!
//! Why not `aws-smithy-http-client`'s own rustls client: it trusts the OS's
//! root store, which it loads with `rustls-native-certs` when the S3 client
//! is built (`Client::from_conf` validates the HTTP client by building its
//! connector). That decodes about 145 PEM certificates with constant-time
//! base64: about 7 ms of CPU in every cold start (docs/PERFORMANCE.md), which
//! is a third of the cold-start budget. It accepts extra roots only as PEM,
//! decoded the same way. The compiled-in roots cost microseconds, and they
//! are what Postgres and the JWKS fetch already trust (ADR 0003).
//!
//! Errors are sorted into the SDK's `ConnectorError` kinds the way its own
//! client does, because the retry policy reads them: connect failures,
//! closed and reset connections are I/O (retried), timeouts are timeouts
//! (retried), malformed requests are user errors (not retried), an
//! incomplete response is transient (retried).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::RwLock;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::box_error::BoxError;
use crate::tls::TrustRoots;

/// The pooled HTTP(S) client: the SDK's calls and the API's own
/// (`crate::s3_call`) share one, and so its connections.
pub(crate) type HyperClient = Client<hyper_rustls::HttpsConnector<TcpConnector>, SdkBody>;
/// The connect and read timeouts of the SDK's connector settings.
type Timeouts = (Option<Duration>, Option<Duration>);

/// The HTTP client for [`aws_sdk_s3::config::Builder::http_client`]: plain
/// HTTP for an `http://` endpoint (local S3 servers), TLS 1.2/1.3 on ring with
/// the Mozilla roots for `https://`.
pub fn client(trust: &TrustRoots) -> SharedHttpClient {
    SharedHttpClient::new(S3HttpClient {
        trust: trust.clone(),
        connectors: RwLock::default(),
    })
}

/// [`client`], whose connector for `connect_timeout` (and no read timeout,
/// as the S3 client is configured) is `pool`: the SDK's calls then share
/// `pool`'s connections with the calls the API sends itself.
pub(crate) fn client_sharing(
    trust: &TrustRoots,
    pool: HyperClient,
    connect_timeout: Duration,
) -> SharedHttpClient {
    let connector = SharedHttpConnector::new(Connector {
        client: pool,
        read_timeout: None,
    });
    SharedHttpClient::new(S3HttpClient {
        trust: trust.clone(),
        connectors: RwLock::new(HashMap::from([((Some(connect_timeout), None), connector)])),
    })
}

/// One connector (and so one connection pool) per timeout setting. The SDK
/// asks for the connector on every attempt; our S3 client has one timeout
/// configuration, so in practice this holds one entry for the process.
struct S3HttpClient {
    trust: TrustRoots,
    connectors: RwLock<HashMap<Timeouts, SharedHttpConnector>>,
}

impl fmt::Debug for S3HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("S3HttpClient(hyper-util, rustls on ring, webpki-roots)")
    }
}

impl HttpClient for S3HttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key: Timeouts = (settings.connect_timeout(), settings.read_timeout());
        if let Some(connector) = self.connectors.read().expect("not poisoned").get(&key) {
            return connector.clone();
        }
        self.connectors
            .write()
            .expect("not poisoned")
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(&self.trust, key.0, key.1)))
            .clone()
    }
}

struct Connector {
    client: HyperClient,
    read_timeout: Option<Duration>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl Connector {
    fn new(
        trust: &TrustRoots,
        connect_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Self {
        Self {
            client: hyper_client(trust, connect_timeout),
            read_timeout,
        }
    }
}

/// A pooled client: plain HTTP for an `http://` endpoint, TLS on ring with
/// `trust`'s roots for `https://`.
pub(crate) fn hyper_client(trust: &TrustRoots, connect_timeout: Option<Duration>) -> HyperClient {
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect_timeout);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(trust.client_config_with(restricted_ring_provider()))
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let mut builder = Client::builder(TokioExecutor::new());
    // The pool's idle timeout only runs with a timer.
    builder.pool_timer(TokioTimer::new());
    builder.build(https)
}

/// ring's suites minus the ones `aws-smithy-http-client` leaves out: the
/// S3 client keeps the suite list it had (ADR 0003).
fn restricted_ring_provider() -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite::*;
    const ALLOWED: [rustls::CipherSuite; 7] = [
        TLS13_AES_256_GCM_SHA384,
        TLS13_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|suite| ALLOWED.contains(&suite.suite()));
    provider
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(error) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::user(error.into())));
            }
        };
        let response = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => match tokio::time::timeout(limit, response).await {
                    Ok(response) => response,
                    Err(elapsed) => return Err(ConnectorError::timeout(elapsed.into())),
                },
                None => response.await,
            };
            match response {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|error| ConnectorError::other(error.into(), None)),
                Err(error) => Err(classify(error)),
            }
        })
    }
}

/// The SDK's own classification (`aws-smithy-http-client`'s `downcast_error`).
pub(crate) fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    if error.is_connect() {
        let timed_out = find_source::<std::io::Error>(&error)
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        let error: BoxError = Box::new(error);
        return if timed_out {
            ConnectorError::timeout(error)
        } else {
            ConnectorError::io(error)
        };
    }
    let kind: fn(BoxError) -> ConnectorError = match find_source::<hyper::Error>(&error) {
        Some(hyper) if hyper.is_timeout() => ConnectorError::timeout,
        Some(hyper) if hyper.is_user() => ConnectorError::user,
        Some(hyper)
            if hyper.is_closed()
                || hyper.is_canceled()
                || find_source::<std::io::Error>(hyper).is_some() =>
        {
            ConnectorError::io
        }
        // S3 sometimes closes a kept-alive connection mid-response.
        Some(hyper) if hyper.is_incomplete_message() => {
            |error| ConnectorError::other(error, Some(ErrorKind::TransientError))
        }
        _ if find_source::<std::io::Error>(&error).is_some() => ConnectorError::io,
        _ => |error| ConnectorError::other(error, None),
    };
    kind(Box::new(error))
}

pub(crate) fn find_source<'a, E: StdError + 'static>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a E> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        next = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_are_compiled_in_and_the_suites_restricted() {
        let provider = restricted_ring_provider();
        let suites: Vec<_> = provider.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites.len(), 7, "{suites:?}");
        assert!(!suites.contains(&rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256));
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_retryable_io_error() {
        // Bind and drop a listener: nothing listens on that port now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let connector = Connector::new(&TrustRoots::builtin(), Some(Duration::from_secs(1)), None);
        let request = HttpRequest::get(format!("http://127.0.0.1:{port}/bucket")).unwrap();
        let error = connector.call(request).await.unwrap_err();
        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn https_to_a_server_that_does_not_speak_tls_fails() {
        // It answers the ClientHello with a plain-HTTP response: the
        // handshake fails and no response reaches the SDK.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let connector = Connector::new(&TrustRoots::builtin(), Some(Duration::from_secs(1)), None);
        let request = HttpRequest::get(format!("https://127.0.0.1:{port}/bucket")).unwrap();
        let error = connector.call(request).await.unwrap_err();
        assert!(!error.is_user(), "{error:?}");
    }
}
