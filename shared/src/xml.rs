//! The little XML the API reads and writes to AWS (S3's and STS's answers,
//! a CompleteMultipartUpload body), with `aws-smithy-xml`, which the S3
//! client links anyway.

use std::borrow::Cow;

use aws_smithy_xml::decode::{Document, try_data};

/// The text of the first element named each of `names` (local names, any
/// depth); `None` where there is none or the XML breaks before it.
pub(crate) fn leaf_values<const N: usize>(body: &str, names: &[&str; N]) -> [Option<String>; N] {
    let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
    // S3 may send whitespace before the document while it works on a long
    // CompleteMultipartUpload; the parser wants the declaration first.
    let mut document = Document::new(body.trim_start());
    while let Some(start) = document.next_start_element() {
        let Some(index) = names.iter().position(|name| start.local() == *name) else {
            continue;
        };
        if found[index].is_some() {
            continue;
        }
        let mut scoped = document.scoped_to(start);
        found[index] = try_data(&mut scoped).ok().map(Cow::into_owned);
    }
    found
}

/// `text` with the characters XML reserves escaped, for element content.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            other => escaped.push(other),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_values_are_found_at_any_depth_unescaped_after_leading_whitespace() {
        let body =
            "  \n<?xml version=\"1.0\"?><R><A><Code>No&amp;Such</Code></A><Code>second</Code></R>";
        let [code, missing] = leaf_values(body, &["Code", "Missing"]);
        assert_eq!(code.as_deref(), Some("No&Such"));
        assert_eq!(missing, None);
    }

    #[test]
    fn escaped_text_reads_back_as_it_was() {
        let etag = "\"a<b>&'c\"";
        let body = format!("<ETag>{}</ETag>", escape(etag));
        assert_eq!(leaf_values(&body, &["ETag"])[0].as_deref(), Some(etag));
        assert!(matches!(escape("plain"), Cow::Borrowed("plain")));
    }
}
