//! The S3 store the checksum tests run against: the embedded S3 by default,
//! or the real one scripts/garage-check started (scripts/garage), named in
//! `MOC_TEST_S3` and `MOC_TEST_S3_*`. The same test bodies run on both, so
//! the embedded S3 is held to a real implementation and not only to our
//! own tests; where the stores legitimately differ, the difference is data
//! here.

/// A store the tests know the ways of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// dev/src/s3.rs, which answers as AWS S3 does.
    Embedded,
    /// Garage 2.5 (scripts/garage).
    Garage,
}

impl StoreKind {
    /// The error code for bytes that do not match their declared CRC32C
    /// (a part, or the whole object at completion): AWS S3 answers
    /// `BadDigest`, Garage `InvalidDigest`; both with 400.
    pub fn checksum_mismatch_code(self) -> &'static str {
        match self {
            StoreKind::Embedded => "BadDigest",
            StoreKind::Garage => "InvalidDigest",
        }
    }
}

/// An S3 store the tests do not start: its endpoint, SigV4 region, keys
/// and the bucket they may write to.
#[derive(Debug, Clone)]
pub struct ExternalStore {
    pub kind: StoreKind,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub bucket: String,
}

/// The external store `MOC_TEST_S3` names, if any. A name set without the
/// rest of the variables, or an unknown name, is a broken run, not a quiet
/// fall back to the embedded S3.
pub fn external_store() -> Option<ExternalStore> {
    let name = std::env::var("MOC_TEST_S3").ok()?;
    let kind = match name.as_str() {
        "garage" => StoreKind::Garage,
        other => panic!("MOC_TEST_S3={other}: the tests know only garage"),
    };
    let var = |suffix: &str| {
        let name = format!("MOC_TEST_S3_{suffix}");
        std::env::var(&name).unwrap_or_else(|_| panic!("MOC_TEST_S3 is set but {name} is not"))
    };
    Some(ExternalStore {
        kind,
        endpoint: var("ENDPOINT"),
        region: var("REGION"),
        access_key_id: var("ACCESS_KEY_ID"),
        secret_access_key: var("SECRET_ACCESS_KEY"),
        bucket: var("BUCKET"),
    })
}
