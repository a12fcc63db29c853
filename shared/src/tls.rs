//! What every TLS connection of the process trusts, built in this one place:
//! the Mozilla roots compiled into the binary (`webpki-roots`, ADR 0003),
//! plus the certificates of `SSL_CERT_FILE` when it is set (a private CA in
//! front of Postgres, Redis, S3 or STS; the tests' local CA). Postgres, Redis,
//! S3 and STS all take their trust from a [`TrustRoots`].
//!
//! When `SSL_CERT_FILE` is unset nothing is read, so the cold start pays
//! nothing for it; when it is set, its PEM is read and parsed once, at cold
//! start, and a file that cannot be used is a configuration error naming it.

use std::fmt;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The roots a TLS client verifies servers against. Cheap to clone.
#[derive(Clone, Default)]
pub struct TrustRoots {
    extra: Option<Arc<ExtraRoots>>,
}

struct ExtraRoots {
    path: String,
    certificates: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for TrustRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.extra {
            None => f.write_str("TrustRoots(webpki-roots)"),
            Some(extra) => write!(
                f,
                "TrustRoots(webpki-roots + {} from {})",
                extra.certificates.len(),
                extra.path
            ),
        }
    }
}

impl TrustRoots {
    /// The compiled-in roots only.
    pub fn builtin() -> Self {
        Self::default()
    }

    /// The compiled-in roots plus `SSL_CERT_FILE`'s certificates, when set.
    pub fn from_env() -> Result<Self, String> {
        Self::load(std::env::var("SSL_CERT_FILE").ok().as_deref())
    }

    /// The compiled-in roots plus the certificates of the PEM file at
    /// `path`; `None` or an empty path reads nothing. The error names the
    /// variable and says what is wrong, for the cold-start log.
    pub fn load(path: Option<&str>) -> Result<Self, String> {
        let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(Self::builtin());
        };
        let unusable = |why: String| format!("SSL_CERT_FILE ({path}) is unusable: {why}");
        let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable(format!("not a PEM certificate list ({e})")))?;
        if certificates.is_empty() {
            return Err(unusable("it holds no PEM certificate".into()));
        }
        // The same check the root store makes, now rather than on the first
        // connection.
        let mut store = RootCertStore::empty();
        for certificate in &certificates {
            store
                .add(certificate.clone())
                .map_err(|e| unusable(format!("a certificate is not a usable root ({e})")))?;
        }
        Ok(Self {
            extra: Some(Arc::new(ExtraRoots {
                path: path.to_owned(),
                certificates,
            })),
        })
    }

    /// How many certificates `SSL_CERT_FILE` added (0 when unset).
    pub fn extra_count(&self) -> usize {
        self.extra.as_ref().map_or(0, |e| e.certificates.len())
    }

    /// The compiled-in roots plus the extra ones.
    pub fn root_store(&self) -> RootCertStore {
        let mut store = RootCertStore::empty();
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(extra) = &self.extra {
            // Checked when loaded: none is refused here.
            store.add_parsable_certificates(extra.certificates.iter().cloned());
        }
        store
    }

    /// A client configuration on *ring* (the process's one provider, ADR
    /// 0003) trusting [`Self::root_store`]: TLS 1.2 and 1.3, no client
    /// certificate.
    pub fn client_config(&self) -> rustls::ClientConfig {
        self.client_config_with(rustls::crypto::ring::default_provider())
    }

    /// As [`Self::client_config`], on a given *ring* provider (the S3 client
    /// restricts its cipher suites).
    pub fn client_config_with(&self, provider: CryptoProvider) -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(self.root_store())
            .with_no_client_auth()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_reads_nothing_and_trusts_the_compiled_in_roots() {
        for unset in [None, Some(""), Some("  ")] {
            let roots = TrustRoots::load(unset).unwrap();
            assert_eq!(roots.extra_count(), 0);
            assert_eq!(
                roots.root_store().len(),
                webpki_roots::TLS_SERVER_ROOTS.len()
            );
        }
    }

    #[test]
    fn an_unusable_file_is_refused_naming_the_variable() {
        let missing = TrustRoots::load(Some("/nonexistent/ca.pem")).unwrap_err();
        assert!(
            missing.starts_with("SSL_CERT_FILE (/nonexistent/ca.pem)"),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("moc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let error = TrustRoots::load(empty.to_str()).unwrap_err();
        assert!(error.contains("holds no PEM certificate"), "{error}");
        let broken = dir.join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = TrustRoots::load(broken.to_str()).unwrap_err();
        assert!(error.contains("SSL_CERT_FILE"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
