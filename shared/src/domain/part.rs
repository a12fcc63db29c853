use std::fmt;

use super::{ByteSize, Crc32c};

/// An S3 part number: a plain decimal integer in 1..=10000 (S3 allows at most
/// 10,000 parts per upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartNumber(u16);

impl PartNumber {
    pub const MAX: u16 = 10_000;

    /// Strict: `1abc`, `+1`, ` 1` and `01e0` are all refused.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.is_empty() || raw.len() > 5 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        raw.parse::<u16>().ok().and_then(Self::new)
    }

    pub fn new(n: u16) -> Option<Self> {
        (1..=Self::MAX).contains(&n).then_some(Self(n))
    }

    pub fn get(self) -> u16 {
        self.0
    }

    pub fn as_i32(self) -> i32 {
        i32::from(self.0)
    }
}

impl fmt::Display for PartNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A part as the store holds it (what S3's ListParts says of one part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub part_number: PartNumber,
    pub etag: String,
    pub size: u64,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
    /// Listed for uploads opened with CRC32C.
    pub crc32c: Option<Crc32c>,
}

/// How a file of `size` splits into parts of `part_size`: every part but the
/// last is exactly `part_size`, the last is 1..=`part_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub size: ByteSize,
    pub part_size: ByteSize,
}

/// S3's floor for every part except the last.
pub const S3_MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

impl PartPlan {
    pub fn new(size: ByteSize, part_size: ByteSize) -> Self {
        Self { size, part_size }
    }

    pub fn part_count(&self) -> u64 {
        self.size.bytes().div_ceil(self.part_size.bytes()).max(1)
    }

    pub fn fits_s3(&self) -> bool {
        self.part_count() <= u64::from(PartNumber::MAX)
    }

    pub fn part_size_of(&self, part: PartNumber) -> u64 {
        let n = u64::from(part.get());
        let count = self.part_count();
        if n < count {
            self.part_size.bytes()
        } else {
            self.size.bytes() - (count - 1) * self.part_size.bytes()
        }
    }

    pub fn parts(&self) -> impl Iterator<Item = PartNumber> {
        (1..=u16::try_from(self.part_count()).unwrap_or(u16::MAX)).filter_map(PartNumber::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers_are_strict_decimal_in_range() {
        for bad in [
            "0",
            "10001",
            "1abc",
            "",
            "-1",
            "+1",
            " 1",
            "1.0",
            "99999999999",
        ] {
            assert_eq!(PartNumber::parse(bad), None, "{bad:?}");
        }
        assert_eq!(PartNumber::parse("1").unwrap().get(), 1);
        assert_eq!(PartNumber::parse("10000").unwrap().get(), 10_000);
        assert_eq!(PartNumber::parse("007").unwrap().get(), 7);
    }

    #[test]
    fn a_twelve_mib_file_is_three_parts_with_a_short_last() {
        let mib = 1024 * 1024;
        let plan = PartPlan::new(ByteSize::new(12 * mib), ByteSize::new(5 * mib));
        assert_eq!(plan.part_count(), 3);
        let sizes: Vec<u64> = plan.parts().map(|p| plan.part_size_of(p)).collect();
        assert_eq!(sizes, vec![5 * mib, 5 * mib, 2 * mib]);
    }

    #[test]
    fn an_exact_multiple_has_no_empty_last_part() {
        let plan = PartPlan::new(ByteSize::new(10), ByteSize::new(5));
        assert_eq!(plan.part_count(), 2);
        assert_eq!(plan.part_size_of(PartNumber::new(2).unwrap()), 5);
    }
}
