//! ETags: opaque strings from S3, compared and checked here only.
//!
//! A part's (and a single-part object's) ETag is the quoted hex MD5 of its
//! bytes, `"abc123…"`; a completed multipart object's is
//! `"<hex>-<part count>"`. S3-compatible stores differ (and SSE-KMS ETags are
//! not MD5s), so ETags are stored and compared opaquely; a shape we did not
//! expect is only logged, never refused. Clients must not parse them either.

/// Clients and proxies disagree on the quotes around an ETag; the quotes
/// are the only difference tolerated.
pub fn etag_eq(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// Whether an ETag has the shape S3 gives a part: quoted hex MD5, with an
/// optional `-<count>`.
pub fn looks_like_part_etag(etag: &str) -> bool {
    let inner = etag.strip_prefix('"').and_then(|e| e.strip_suffix('"'));
    inner.is_some_and(|hex| {
        let digest = hex.split_once('-').map_or(hex, |(d, n)| {
            if n.bytes().all(|b| b.is_ascii_digit()) {
                d
            } else {
                ""
            }
        });
        digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_shapes() {
        assert!(looks_like_part_etag("\"9e107d9d372bb6826bd81d3542a419d6\""));
        assert!(looks_like_part_etag(
            "\"9e107d9d372bb6826bd81d3542a419d6-3\""
        ));
        assert!(!looks_like_part_etag("9e107d9d372bb6826bd81d3542a419d6"));
        assert!(!looks_like_part_etag("\"opaque-etag\""));
    }

    #[test]
    fn only_the_quotes_may_differ() {
        assert!(etag_eq("\"abc\"", "abc"));
        assert!(etag_eq("abc", "abc"));
        assert!(!etag_eq("abc", "abd"));
        assert!(!etag_eq("ABC", "abc"));
    }
}
