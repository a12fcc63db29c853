//! CRC32C: the checksum a client declares for a file (and for each part),
//! checked by S3 at every hop.
//!
//! S3 writes a CRC32C as the standard base64 of its four big-endian bytes
//! (`x-amz-checksum-crc32c: yZRlqg==`), so that is the one spelling this
//! type parses and prints. A multipart upload created with `ChecksumType =
//! FULL_OBJECT` checks the CRC32C of the whole object, which is the
//! combination of the parts' CRC32Cs in order ([`Crc32c::combine`]); no byte
//! has to be read twice to know it.

use std::fmt;
use std::str::FromStr;

// A part or object length is a u64; `combine` needs it as a usize.
const _: () = assert!(usize::BITS >= 64, "CRC32C lengths need a 64-bit usize");

/// A CRC32C value, parsed from (and printed as) S3's base64 spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Crc32c(u32);

/// Why a declared CRC32C was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a CRC32C is the base64 of 4 bytes, as S3 writes it (8 characters, e.g. \"yZRlqg==\")")]
pub struct Crc32cSyntax;

impl Crc32c {
    /// The CRC32C of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(crc32c::crc32c(data))
    }

    /// The CRC32C of `self`'s bytes followed by `data`: how a stream is
    /// hashed chunk by chunk.
    pub fn append(self, data: &[u8]) -> Self {
        Self(crc32c::crc32c_append(self.0, data))
    }

    /// The CRC32C of the bytes `self` covers followed by `next_len` bytes
    /// whose CRC32C is `next`.
    pub fn combine(self, next: Crc32c, next_len: u64) -> Self {
        // Lossless: the functions run on 64-bit targets only (asserted below).
        let len = usize::try_from(next_len).unwrap_or(usize::MAX);
        Self(crc32c::crc32c_combine(self.0, next.0, len))
    }

    /// The full-object CRC32C of parts given in order as (CRC32C, length).
    pub fn of_parts(parts: impl IntoIterator<Item = (Crc32c, u64)>) -> Self {
        parts
            .into_iter()
            .fold(Self(0), |whole, (crc, len)| whole.combine(crc, len))
    }

    pub fn value(self) -> u32 {
        self.0
    }
}

impl FromStr for Crc32c {
    type Err = Crc32cSyntax;

    /// Strict: exactly the 8 characters S3 prints, padding included; a
    /// spelling whose unused bits are set (`yZRlqh==`) is refused, so one
    /// value has one spelling and compares as a string.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.len() != 8 || !raw.ends_with("==") {
            return Err(Crc32cSyntax);
        }
        let bytes = aws_smithy_types::base64::decode(raw).map_err(|_| Crc32cSyntax)?;
        let bytes: [u8; 4] = bytes.try_into().map_err(|_| Crc32cSyntax)?;
        let parsed = Self(u32::from_be_bytes(bytes));
        (parsed.to_string() == raw)
            .then_some(parsed)
            .ok_or(Crc32cSyntax)
    }
}

impl fmt::Display for Crc32c {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&aws_smithy_types::base64::encode(self.0.to_be_bytes()))
    }
}

impl serde::Serialize for Crc32c {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Crc32c {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRC32C check value (RFC 3720's "123456789") and S3's spelling of it.
    const CHECK: (&[u8], u32, &str) = (b"123456789", 0xE306_9283, "4waSgw==");

    #[test]
    fn known_vectors() {
        assert_eq!(Crc32c::of(CHECK.0).value(), CHECK.1);
        assert_eq!(Crc32c::of(CHECK.0).to_string(), CHECK.2);
        // RFC 3720 B.4: 32 bytes of zeros, of 0xff, ascending 0..=31.
        assert_eq!(Crc32c::of(&[0u8; 32]).value(), 0x8A91_36AA);
        assert_eq!(Crc32c::of(&[0xffu8; 32]).value(), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(Crc32c::of(&ascending).value(), 0x46DD_794E);
        assert_eq!(Crc32c::of(b"").to_string(), "AAAAAA==");
    }

    #[test]
    fn parses_only_s3s_spelling() {
        assert_eq!("4waSgw==".parse::<Crc32c>(), Ok(Crc32c(0xE306_9283)));
        assert_eq!("AAAAAA==".parse::<Crc32c>(), Ok(Crc32c(0)));
        for bad in [
            "",
            "4waSgw",
            "4waSgw=",
            "4waSgw===",
            "4waSgx==",
            "4waS gw=",
            "4waSgw==\n",
            "4waSgwAA",
            "e3069283",
            "////////",
            "4waSgw-=",
        ] {
            assert_eq!(bad.parse::<Crc32c>(), Err(Crc32cSyntax), "{bad:?}");
        }
    }

    #[test]
    fn combined_parts_are_the_whole_objects_crc() {
        let data: Vec<u8> = (0..100_000u32)
            .map(|i| (i * 7 + i / 13).to_le_bytes()[0])
            .collect();
        let whole = Crc32c::of(&data);
        for cut in [0, 1, 4_096, 50_000, 99_999, 100_000] {
            let (a, b) = data.split_at(cut);
            let parts = [
                (Crc32c::of(a), u64::try_from(a.len()).unwrap()),
                (Crc32c::of(b), u64::try_from(b.len()).unwrap()),
            ];
            assert_eq!(Crc32c::of_parts(parts), whole, "cut at {cut}");
        }
        let three: Vec<(Crc32c, u64)> = data
            .chunks(33_333)
            .map(|c| (Crc32c::of(c), u64::try_from(c.len()).unwrap()))
            .collect();
        assert_eq!(three.len(), 4);
        assert_eq!(Crc32c::of_parts(three), whole);
        assert_eq!(
            Crc32c::of(b"12345").combine(Crc32c::of(b"6789"), 4).value(),
            CHECK.1
        );
    }

    #[test]
    fn appending_streams_the_same_value() {
        let crc = Crc32c::of(b"1234").append(b"56").append(b"").append(b"789");
        assert_eq!(crc.value(), CHECK.1);
    }

    #[test]
    fn serde_round_trip_refuses_bad_spellings() {
        let crc: Crc32c = serde_json::from_str("\"4waSgw==\"").unwrap();
        assert_eq!(serde_json::to_string(&crc).unwrap(), "\"4waSgw==\"");
        assert!(serde_json::from_str::<Crc32c>("\"4waSgx==\"").is_err());
        assert!(serde_json::from_str::<Crc32c>("3808858755").is_err());
    }
}
