//! The parts a client lists to complete a file, held to what S3 holds
//! (docs/contract.md §4.6).

use super::etag::etag_eq;
use super::part::{PartNumber, PartPlan, S3_MIN_PART_SIZE};
use crate::s3::StoredPart;

/// Why a complete request's part list cannot complete the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedPartsProblem {
    /// S3 lacks these parts of the plan.
    NotUploaded { missing: Vec<u16>, expected: u64 },
    /// The list has the wrong number of parts.
    CountMismatch { expected: u64, received: usize },
    /// A listed ETag is not the one S3 holds for the part.
    EtagMismatch { part: u16 },
    /// A part S3 holds is not in the list.
    NotListed { part: u16, expected: u64 },
    /// A part other than the last is under S3's 5 MiB floor.
    TooSmall { part: u16, size: u64 },
}

/// Every part 1..N present in S3, N parts listed, each listed ETag equal to
/// S3's, every non-final part at least 5 MiB. Returns the parts to complete
/// with S3's own spelling of each ETag.
pub fn check_listed_parts(
    plan: &PartPlan,
    stored: &[StoredPart],
    listed: &[(PartNumber, String)],
) -> Result<Vec<(PartNumber, String)>, ListedPartsProblem> {
    let expected = plan.part_count();
    let missing: Vec<u16> = plan
        .parts()
        .filter(|n| !stored.iter().any(|p| p.part_number == *n))
        .map(PartNumber::get)
        .collect();
    if !missing.is_empty() {
        return Err(ListedPartsProblem::NotUploaded { missing, expected });
    }
    if listed.len() as u64 != expected {
        return Err(ListedPartsProblem::CountMismatch {
            expected,
            received: listed.len(),
        });
    }
    let mut result = Vec::with_capacity(listed.len());
    for part in plan.parts() {
        let Some(stored_part) = stored.iter().find(|p| p.part_number == part) else {
            continue;
        };
        check_one(part, stored_part, listed, expected)?;
        result.push((part, stored_part.etag.clone()));
    }
    Ok(result)
}

fn check_one(
    part: PartNumber,
    stored: &StoredPart,
    listed: &[(PartNumber, String)],
    expected: u64,
) -> Result<(), ListedPartsProblem> {
    match listed.iter().find(|(n, _)| *n == part) {
        Some((_, etag)) if etag_eq(etag, &stored.etag) => {}
        Some(_) => return Err(ListedPartsProblem::EtagMismatch { part: part.get() }),
        None => {
            return Err(ListedPartsProblem::NotListed {
                part: part.get(),
                expected,
            });
        }
    }
    if u64::from(part.get()) < expected && stored.size < S3_MIN_PART_SIZE {
        return Err(ListedPartsProblem::TooSmall {
            part: part.get(),
            size: stored.size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ByteSize;

    const MIB: u64 = 1024 * 1024;

    fn stored(n: u16, etag: &str, size: u64) -> StoredPart {
        StoredPart {
            part_number: PartNumber::new(n).unwrap(),
            etag: etag.into(),
            size,
            last_modified: None,
            crc32c: None,
        }
    }

    fn listed(n: u16, etag: &str) -> (PartNumber, String) {
        (PartNumber::new(n).unwrap(), etag.into())
    }

    fn plan() -> PartPlan {
        PartPlan::new(ByteSize::new(12 * MIB), ByteSize::new(5 * MIB))
    }

    /// Three parts in S3: 5 MiB, `middle` MiB, 2 MiB.
    fn three_stored(middle: u64) -> [StoredPart; 3] {
        [
            stored(1, "\"a\"", 5 * MIB),
            stored(2, "\"b\"", middle * MIB),
            stored(3, "\"c\"", 2 * MIB),
        ]
    }

    #[test]
    fn missing_parts_are_named() {
        let err = check_listed_parts(
            &plan(),
            &[stored(1, "\"a\"", 5 * MIB)],
            &[listed(1, "\"a\"")],
        )
        .unwrap_err();
        assert_eq!(
            err,
            ListedPartsProblem::NotUploaded {
                missing: vec![2, 3],
                expected: 3
            }
        );
    }

    #[test]
    fn each_problem_names_its_part() {
        use ListedPartsProblem::*;
        let quoted = [listed(1, "a"), listed(2, "b"), listed(3, "\"c\"")];
        let cases = [
            (
                5,
                vec![listed(1, "a")],
                CountMismatch {
                    expected: 3,
                    received: 1,
                },
            ),
            (
                5,
                vec![listed(1, "a"), listed(2, "x"), listed(3, "c")],
                EtagMismatch { part: 2 },
            ),
            // Part 1 twice: part 2, held by S3, is not in the list.
            (
                5,
                vec![listed(1, "a"), listed(1, "a"), listed(3, "c")],
                NotListed {
                    part: 2,
                    expected: 3,
                },
            ),
            (1, quoted.to_vec(), TooSmall { part: 2, size: MIB }),
        ];
        for (middle_mib, list, problem) in cases {
            let err = check_listed_parts(&plan(), &three_stored(middle_mib), &list).unwrap_err();
            assert_eq!(err, problem, "{list:?}");
        }
    }

    #[test]
    fn quotes_are_tolerated_and_s3s_spelling_is_completed() {
        let list = [listed(1, "a"), listed(2, "b"), listed(3, "\"c\"")];
        let parts = check_listed_parts(&plan(), &three_stored(5), &list).unwrap();
        assert_eq!(parts[1].1, "\"b\"");
        assert_eq!(parts.len(), 3);
    }
}
