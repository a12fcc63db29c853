//! The MOC a session becomes: the names its files are stored under and which
//! file URL answers which field (docs/contract.md §4.7).

use std::collections::HashSet;

use super::FileCategory;

/// `moc_files` is unique on `(moc_id, original_filename)`, yet a session
/// may hold an image and a thumbnail of the same name: later ones become
/// `name (2).ext`, `name (3).ext`, …
pub fn unique_name(seen: &mut HashSet<String>, name: &str) -> String {
    if seen.insert(name.to_owned()) {
        return name.to_owned();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| format!("{stem} ({n}){ext}"))
        .find(|candidate| seen.insert(candidate.clone()))
        .unwrap_or_else(|| name.to_owned())
}

/// A MOC's file URLs by the field that shows them, in stored order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MocFileUrls {
    /// The first instruction file.
    pub pdf: Option<String>,
    /// Gallery images and thumbnails.
    pub images: Vec<String>,
    pub parts_lists: Vec<String>,
}

impl MocFileUrls {
    /// Groups `(file_type, file_url)` rows of `moc_files`.
    pub fn group(files: &[(String, String)]) -> Self {
        use FileCategory::*;
        let urls_of = |categories: &[FileCategory]| -> Vec<String> {
            files
                .iter()
                .filter(|(t, _)| categories.iter().any(|c| c.moc_file_type() == t))
                .map(|(_, url)| url.clone())
                .collect()
        };
        Self {
            pdf: urls_of(&[Instruction]).into_iter().next(),
            images: urls_of(&[Image, Thumbnail]),
            parts_lists: urls_of(&[PartsList]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_file_names_are_numbered() {
        let mut seen = HashSet::new();
        assert_eq!(unique_name(&mut seen, "a.png"), "a.png");
        assert_eq!(unique_name(&mut seen, "a.png"), "a (2).png");
        assert_eq!(unique_name(&mut seen, "a.png"), "a (3).png");
        assert_eq!(unique_name(&mut seen, "README"), "README");
        assert_eq!(unique_name(&mut seen, "README"), "README (2)");
    }

    #[test]
    fn urls_are_grouped_by_field_in_stored_order() {
        let row = |t: &str, url: &str| (t.to_owned(), url.to_owned());
        let files = [
            row("thumbnail", "t"),
            row("instruction", "a.pdf"),
            row("gallery-image", "g"),
            row("instruction", "b.pdf"),
            row("parts-list", "p"),
        ];
        let urls = MocFileUrls::group(&files);
        assert_eq!(urls.pdf.as_deref(), Some("a.pdf"));
        assert_eq!(urls.images, ["t", "g"]);
        assert_eq!(urls.parts_lists, ["p"]);
    }
}
