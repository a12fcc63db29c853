//! Slugs (docs/contract.md §5).

use unicode_normalization::UnicodeNormalization;

pub const SLUG_MAX_LEN: usize = 80;

pub fn slugify(title: &str) -> String {
    let ascii: String = title
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase();
    let mut slug = String::with_capacity(ascii.len());
    for c in ascii.trim().chars() {
        if c.is_whitespace() || c == '_' || c == '-' {
            if !slug.ends_with('-') {
                slug.push('-');
            }
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        }
    }
    let slug = slug.trim_matches('-');
    let cut: String = slug.chars().take(SLUG_MAX_LEN).collect();
    let cut = cut.trim_matches('-');
    if cut.is_empty() {
        "moc".to_owned()
    } else {
        cut.to_owned()
    }
}

/// The `n`th candidate for `base`: `base`, `base-2`, `base-3`, …, trimming
/// the base first so the suffix never pushes past [`SLUG_MAX_LEN`].
pub fn slug_candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_owned();
    }
    let suffix = format!("-{n}");
    let room = SLUG_MAX_LEN - suffix.len();
    let trimmed: String = base.chars().take(room).collect();
    format!("{}{suffix}", trimmed.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cases_from_the_contract() {
        assert_eq!(slugify("Café MOC"), "cafe-moc");
        assert_eq!(slugify("My MOC! @#$%"), "my-moc");
        assert_eq!(slugify("レゴ"), "moc");
        assert_eq!(slugify("  a__b -- c  "), "a-b-c");
        assert_eq!(slugify("Existing MOC Title"), "existing-moc-title");
    }

    #[test]
    fn long_titles_are_cut_to_eighty_without_trailing_dash() {
        let title = format!("{} b", "a".repeat(79));
        let slug = slugify(&title);
        assert_eq!(slug, "a".repeat(79));
        assert!(slugify(&"word ".repeat(40)).len() <= SLUG_MAX_LEN);
    }

    #[test]
    fn suffixes_trim_the_base_to_stay_within_eighty() {
        assert_eq!(slug_candidate("my-moc", 1), "my-moc");
        assert_eq!(slug_candidate("my-moc", 2), "my-moc-2");
        let long = "x".repeat(80);
        let candidate = slug_candidate(&long, 12);
        assert_eq!(candidate.len(), 80);
        assert!(candidate.ends_with("x-12"));
    }
}
