//! The parts that complete a file (docs/contract.md §4.6): a client's list
//! held to what S3 holds, or, when the client lists none, what S3 holds
//! held to the file's part plan.

use super::etag::etag_eq;
use super::part::{PartNumber, PartPlan, S3_MIN_PART_SIZE, StoredPart};

/// Why the parts cannot complete the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedPartsProblem {
    /// S3 lacks these parts of the plan.
    NotUploaded { missing: Vec<u16>, expected: u64 },
    /// The list (or, without a list, S3) has the wrong number of parts.
    CountMismatch { expected: u64, received: usize },
    /// A listed ETag is not the one S3 holds for the part.
    EtagMismatch { part: u16 },
    /// A part S3 holds is not in the list.
    NotListed { part: u16, expected: u64 },
    /// Parts other than the last under S3's 5 MiB floor: the first one
    /// (`part`, `size`) and every one (`small`, ascending).
    TooSmall {
        part: u16,
        size: u64,
        small: Vec<u16>,
    },
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
    let held = held_parts(plan, stored)?;
    if u64::try_from(listed.len()).ok() != Some(expected) {
        return Err(ListedPartsProblem::CountMismatch {
            expected,
            received: listed.len(),
        });
    }
    for part in &held {
        match listed.iter().find(|(n, _)| *n == part.part_number) {
            Some((_, etag)) if etag_eq(etag, &part.etag) => {}
            Some(_) => {
                return Err(ListedPartsProblem::EtagMismatch {
                    part: part.part_number.get(),
                });
            }
            None => {
                return Err(ListedPartsProblem::NotListed {
                    part: part.part_number.get(),
                    expected,
                });
            }
        }
    }
    complete_with(expected, &held)
}

/// Without a client list: what S3 holds must be exactly parts 1..N of the
/// plan (none missing, none past N) with every non-final part at least
/// 5 MiB. Returns them with S3's ETags, ascending.
pub fn check_stored_parts(
    plan: &PartPlan,
    stored: &[StoredPart],
) -> Result<Vec<(PartNumber, String)>, ListedPartsProblem> {
    let expected = plan.part_count();
    let held = held_parts(plan, stored)?;
    if stored.len() != held.len() {
        return Err(ListedPartsProblem::CountMismatch {
            expected,
            received: stored.len(),
        });
    }
    complete_with(expected, &held)
}

/// The stored part of each number 1..N of the plan, or the numbers S3 lacks.
fn held_parts<'a>(
    plan: &PartPlan,
    stored: &'a [StoredPart],
) -> Result<Vec<&'a StoredPart>, ListedPartsProblem> {
    let mut held = Vec::new();
    let mut missing = Vec::new();
    for number in plan.parts() {
        match stored.iter().find(|p| p.part_number == number) {
            Some(part) => held.push(part),
            None => missing.push(number.get()),
        }
    }
    if missing.is_empty() {
        Ok(held)
    } else {
        Err(ListedPartsProblem::NotUploaded {
            missing,
            expected: plan.part_count(),
        })
    }
}

/// S3's floor for every part but the last, then the parts as S3 spells
/// them.
fn complete_with(
    expected: u64,
    held: &[&StoredPart],
) -> Result<Vec<(PartNumber, String)>, ListedPartsProblem> {
    let small: Vec<&StoredPart> = held
        .iter()
        .copied()
        .filter(|p| u64::from(p.part_number.get()) < expected && p.size < S3_MIN_PART_SIZE)
        .collect();
    if let Some(first) = small.first() {
        return Err(ListedPartsProblem::TooSmall {
            part: first.part_number.get(),
            size: first.size,
            small: small.iter().map(|p| p.part_number.get()).collect(),
        });
    }
    Ok(held
        .iter()
        .map(|p| (p.part_number, p.etag.clone()))
        .collect())
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
            (
                1,
                quoted.to_vec(),
                TooSmall {
                    part: 2,
                    size: MIB,
                    small: vec![2],
                },
            ),
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

    #[test]
    fn without_a_list_s3s_parts_complete_when_they_are_exactly_the_plan() {
        let parts = check_stored_parts(&plan(), &three_stored(5)).unwrap();
        let numbers: Vec<u16> = parts.iter().map(|(n, _)| n.get()).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(parts[2].1, "\"c\"");
    }

    #[test]
    fn without_a_list_missing_small_and_extra_parts_are_named() {
        use ListedPartsProblem::*;
        let gap = [stored(1, "a", 5 * MIB), stored(3, "c", 2 * MIB)];
        assert_eq!(
            check_stored_parts(&plan(), &gap).unwrap_err(),
            NotUploaded {
                missing: vec![2],
                expected: 3
            }
        );
        let small = [
            stored(1, "a", MIB),
            stored(2, "b", 4 * MIB),
            stored(3, "c", MIB),
        ];
        assert_eq!(
            check_stored_parts(&plan(), &small).unwrap_err(),
            TooSmall {
                part: 1,
                size: MIB,
                small: vec![1, 2]
            }
        );
        let mut extra = three_stored(5).to_vec();
        extra.push(stored(4, "d", MIB));
        assert_eq!(
            check_stored_parts(&plan(), &extra).unwrap_err(),
            CountMismatch {
                expected: 3,
                received: 4
            }
        );
    }
}
