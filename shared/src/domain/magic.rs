//! Content sniffing at finalize: the declared MIME type is only a claim, so
//! the first bytes of the stored object must carry the format's signature.

/// How many leading bytes finalize reads from each object.
pub const SNIFF_LEN: usize = 16;

/// Whether `head` (the object's first bytes) matches `mime_type`. Types with
/// no signature to check (CSV, JSON, …) always match.
pub fn content_matches(mime_type: &str, head: &[u8]) -> bool {
    match mime_type.to_ascii_lowercase().as_str() {
        "application/pdf" => head.starts_with(b"%PDF"),
        "image/jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => head.starts_with(&[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
        "image/webp" => head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP",
        "image/heic" | "image/heif" => head.len() >= 8 && &head[4..8] == b"ftyp",
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_recognised() {
        assert!(content_matches("application/PDF", b"%PDF-1.7\n"));
        assert!(!content_matches("application/pdf", b"hello world"));
        assert!(content_matches("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(content_matches(
            "image/png",
            &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0]
        ));
        assert!(!content_matches("image/png", b"%PDF"));
        assert!(content_matches("image/webp", b"RIFF\x10\0\0\0WEBPVP8 "));
        assert!(!content_matches("image/webp", b"RIFF"));
        assert!(content_matches("image/heic", b"\0\0\0\x18ftypheic"));
        assert!(content_matches("text/csv", b"anything"));
    }
}
