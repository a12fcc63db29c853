//! `SSL_CERT_FILE` for Postgres: under `sslmode=verify-full` the functions
//! trust its CA in addition to the compiled-in roots. The server here is the
//! local Postgres behind a TLS front of the test's own (a certificate for
//! 127.0.0.1 from a CA made with openssl): Postgres' `SSLRequest`, answered
//! `S`, then TLS, then the plain protocol relayed to 127.0.0.1:5432.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use moc_shared::config::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// A CA and a server certificate it signs for 127.0.0.1, in `dir`.
fn make_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let path = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        path("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=moc test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    (path("ca.pem"), path("server.pem"), path("server.key"))
}

/// Listens on a local port: each connection's `SSLRequest` is answered `S`,
/// TLS is terminated with `cert`, and the rest is relayed to Postgres.
async fn tls_front(cert: &Path, key: &Path) -> u16 {
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut ssl_request = [0u8; 8];
                client.read_exact(&mut ssl_request).await?;
                client.write_all(b"S").await?;
                let mut tls = acceptor.accept(client).await?;
                let mut postgres = TcpStream::connect("127.0.0.1:5432").await?;
                tokio::io::copy_bidirectional(&mut tls, &mut postgres).await?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    port
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn postgres_under_verify_full_trusts_the_ssl_cert_file_ca(pool: PgPool) {
    let dir = std::env::temp_dir().join(format!("moc-pg-tls-{}", uuid::Uuid::new_v4().simple()));
    let (ca, cert, key) = make_ca(&dir);
    let port = tls_front(&cert, &key).await;
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let url = format!("postgres://postgres@127.0.0.1:{port}/{database}?sslmode=verify-full");
    let config = |ssl_cert_file: Option<&Path>| {
        Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(url.clone()),
            "MOC_BUCKET" => Some(BUCKET.into()),
            "AUTH_BYPASS" => Some("true".into()),
            "SSL_CERT_FILE" => ssl_cert_file.map(|p| p.display().to_string()),
            _ => None,
        })
        .unwrap()
    };

    // The compiled-in roots alone do not know the CA: no connection.
    let untrusted = moc_shared::db::pool(&config(None)).unwrap();
    let refused = TestApp::with_db(untrusted, &[]).await;
    let answer = refused
        .post(
            "/api/mocs/uploads/sessions",
            json!({"files": [pdf_meta("a.pdf", 64)]}),
        )
        .await;
    assert!(
        answer.is_server_error(),
        "{:?} {}",
        answer.status,
        answer.body
    );

    // With SSL_CERT_FILE, the same URL works: the server is verified.
    let trusted = config(Some(&ca));
    assert_eq!(trusted.trust.extra_count(), 1);
    let app = TestApp::with_db(moc_shared::db::pool(&trusted).unwrap(), &[]).await;
    app.create_session(json!([pdf_meta("a.pdf", 64)])).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[sqlx::test(migrator = "moc_shared::db::MIGRATOR")]
async fn postgres_under_verify_ca_checks_the_chain_but_not_the_name(pool: PgPool) {
    // The server's certificate names 127.0.0.1 only; the URL says localhost.
    let dir = std::env::temp_dir().join(format!("moc-pg-tls-{}", uuid::Uuid::new_v4().simple()));
    let (ca, cert, key) = make_ca(&dir);
    let port = tls_front(&cert, &key).await;
    let database = pool.connect_options().get_database().unwrap().to_owned();
    let app_with = |sslmode: &str, trusted: bool| {
        let url = format!("postgres://postgres@localhost:{port}/{database}?sslmode={sslmode}");
        let config = Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(url.clone()),
            "MOC_BUCKET" => Some(BUCKET.into()),
            "AUTH_BYPASS" => Some("true".into()),
            "SSL_CERT_FILE" => trusted.then(|| ca.display().to_string()),
            _ => None,
        })
        .unwrap();
        moc_shared::db::pool(&config).unwrap()
    };
    let create = json!({"files": [pdf_meta("a.pdf", 64)]});
    let refused = |sslmode: &'static str, trusted: bool| {
        let db = app_with(sslmode, trusted);
        let create = create.clone();
        async move {
            let app = TestApp::with_db(db, &[]).await;
            let answer = app.post("/api/mocs/uploads/sessions", create).await;
            assert!(
                answer.is_server_error(),
                "{sslmode}: {:?} {}",
                answer.status,
                answer.body
            );
        }
    };

    // verify-full: a trusted chain for another name is refused.
    refused("verify-full", true).await;
    // verify-ca: an untrusted chain is refused; the trusted one is enough.
    refused("verify-ca", false).await;
    let ca_only = TestApp::with_db(app_with("verify-ca", true), &[]).await;
    ca_only
        .post("/api/mocs/uploads/sessions", create)
        .await
        .assert_status(201);
    std::fs::remove_dir_all(dir).unwrap();
}
