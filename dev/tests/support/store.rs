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

    /// The status for a presigned request that lacks a header its
    /// signature covers: AWS S3 computes the signature anyway and answers
    /// 403 SignatureDoesNotMatch; Garage answers 400 InvalidRequest ("signed
    /// header `…` is not present").
    pub fn missing_signed_header_status(self) -> u16 {
        match self {
            StoreKind::Embedded => 403,
            StoreKind::Garage => 400,
        }
    }

    /// Whether every part of an upload opened with CRC32C must carry its
    /// CRC32C. AWS S3 computes a missing one; Garage 2.5 refuses the part
    /// (400 InvalidRequest, "Requested checksum verification without
    /// providing checksum").
    pub fn parts_need_their_crc32c(self) -> bool {
        self == StoreKind::Garage
    }

    /// Whether a refused attempt at a part hides the part held before from
    /// completion. AWS S3 keeps the held part; Garage 2.5 still lists it but
    /// completion answers 400 InvalidPart until the part is sent again.
    pub fn refused_part_hides_the_held_one(self) -> bool {
        self == StoreKind::Garage
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
