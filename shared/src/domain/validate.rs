//! Schema checks for JSON bodies that report every problem by field path, as
//! docs/contract.md §0 asks (`details.errors: {"files[0].size": ["…"]}`).
//!
//! Each JSON request body is one type, a struct of [`Raw`] fields that
//! derives both `Deserialize` and the OpenAPI schema (`ToSchema`), so the
//! document and the handler read the same description. A derived
//! `Deserialize` of typed fields would stop at the first problem; `Raw`
//! fields never fail, and the body's `validate` runs the checks below on
//! each, collecting every problem by field path in one pass.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Field path → messages, in a stable order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.entry(path.into()).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn merge(&mut self, other: FieldErrors) {
        for (path, messages) in other.0 {
            self.0.entry(path).or_default().extend(messages);
        }
    }
}

/// Which control characters a text field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Names, titles, tags, theme, IDs: no C0 control character at all.
    Line,
    /// Free text (descriptions): tab, and the line breaks a text area sends.
    Multiline,
}

/// Why `text` may not be stored, if it may not (docs/contract.md §0): Postgres
/// cannot hold NUL in `text` (an unchecked NUL was a 500), and the other C0
/// controls are never meant in these fields. Anything else, every script and
/// emoji included, is kept exactly as sent.
pub fn text_problem(text: &str, kind: TextKind) -> Option<&'static str> {
    let allowed = |c: char| kind == TextKind::Multiline && matches!(c, '\t' | '\n' | '\r');
    text.chars()
        .any(|c| c.is_ascii_control() && c != '\u{7f}' && !allowed(c))
        .then_some(match kind {
            TextKind::Line => "must not contain NUL or other control characters",
            TextKind::Multiline => {
                "must not contain NUL or control characters other than tab and line breaks"
            }
        })
}

/// A field of a request body as sent: any JSON value, `None` when absent or
/// `null`. Its `Deserialize` never fails (a missing field deserialises as
/// `None` too), so a body struct of `Raw` fields reads from any JSON object;
/// the checks below then report each problem under the field's path rather
/// than failing at the first. The body struct's `#[schema(value_type = ..)]`
/// states the type the checks hold the field to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Raw(Option<Value>);

impl Raw {
    pub fn value(&self) -> Option<&Value> {
        self.0.as_ref()
    }

    pub fn is_absent(&self) -> bool {
        self.0.is_none()
    }

    pub fn string(
        &self,
        path: &str,
        chars: RangeInclusive<usize>,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        if self.is_absent() {
            errors.add(path, "is required");
            return None;
        }
        self.optional_string(path, chars, errors)
    }

    pub fn optional_string(
        &self,
        path: &str,
        chars: RangeInclusive<usize>,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        self.optional_text(path, chars, TextKind::Line, errors)
    }

    /// An optional string of `chars` characters whose control characters
    /// follow `kind`.
    pub fn optional_text(
        &self,
        path: &str,
        chars: RangeInclusive<usize>,
        kind: TextKind,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        let Value::String(s) = self.value()? else {
            errors.add(path, "must be a string");
            return None;
        };
        if let Some(problem) = text_problem(s, kind) {
            errors.add(path, problem);
            return None;
        }
        if !chars.contains(&s.chars().count()) {
            errors.add(
                path,
                format!(
                    "must be {} to {} characters long",
                    chars.start(),
                    chars.end()
                ),
            );
            return None;
        }
        Some(s.clone())
    }

    pub fn integer(
        &self,
        path: &str,
        range: RangeInclusive<u64>,
        errors: &mut FieldErrors,
    ) -> Option<u64> {
        if self.is_absent() {
            errors.add(path, "is required");
            return None;
        }
        self.optional_integer(path, range, errors)
    }

    pub fn optional_integer(
        &self,
        path: &str,
        range: RangeInclusive<u64>,
        errors: &mut FieldErrors,
    ) -> Option<u64> {
        let value = self.value()?;
        let (start, end) = (range.start(), range.end());
        match value.as_u64() {
            Some(n) if range.contains(&n) => return Some(n),
            Some(_) => errors.add(path, format!("must be between {start} and {end}")),
            None if value.is_i64() => {
                errors.add(path, format!("must be between {start} and {end}"))
            }
            None if value.is_number() => errors.add(
                path,
                format!("must be an integer between {start} and {end}"),
            ),
            None => errors.add(path, "must be an integer"),
        }
        None
    }

    /// An optional string of at most `max_chars` characters that parses as
    /// `T`; the parse error is the field's message.
    pub fn optional_parsed<T>(
        &self,
        path: &str,
        max_chars: usize,
        errors: &mut FieldErrors,
    ) -> Option<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let raw = self.optional_string(path, 1..=max_chars, errors)?;
        raw.parse()
            .map_err(|e: T::Err| errors.add(path, e.to_string()))
            .ok()
    }

    pub fn optional_uuid(&self, path: &str, errors: &mut FieldErrors) -> Option<uuid::Uuid> {
        let raw = self.optional_string(path, 1..=64, errors)?;
        match uuid::Uuid::parse_str(&raw) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add(path, "must be a UUID");
                None
            }
        }
    }

    /// A required array of `len` items; each item is handed to `item` with its path.
    pub fn array<T>(
        &self,
        path: &str,
        len: RangeInclusive<usize>,
        errors: &mut FieldErrors,
        mut item: impl FnMut(String, &Value, &mut FieldErrors) -> Option<T>,
    ) -> Option<Vec<T>> {
        let Some(value) = self.value() else {
            errors.add(path, "is required");
            return None;
        };
        let Some(items) = value.as_array() else {
            errors.add(path, "must be an array");
            return None;
        };
        if !len.contains(&items.len()) {
            errors.add(
                path,
                format!("must contain {} to {} items", len.start(), len.end()),
            );
            return None;
        }
        let parsed: Vec<Option<T>> = items
            .iter()
            .enumerate()
            .map(|(i, v)| item(format!("{path}[{i}]"), v, errors))
            .collect();
        parsed.into_iter().collect()
    }
}

/// The body type `T` (a struct of [`Raw`] fields) read from the JSON value
/// at `path`; a value that is not an object is that path's error ("body"
/// for the whole body).
pub fn read_body<T: DeserializeOwned>(
    path: &str,
    value: &Value,
    errors: &mut FieldErrors,
) -> Option<T> {
    if !value.is_object() {
        errors.add(display_path(path), "must be an object");
        return None;
    }
    // Never fails for an object: every field is a `Raw` (or a struct of them).
    T::deserialize(value)
        .map_err(|error| errors.add(display_path(path), error.to_string()))
        .ok()
}

/// The path of field `key` of the object at `path` (`""`: the body).
pub fn field_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Body {
        name: Raw,
        size: Raw,
        missing: Raw,
        count: Raw,
        files: Raw,
    }

    #[derive(Deserialize)]
    struct Item {
        a: Raw,
    }

    #[test]
    fn reports_each_problem_under_its_path() {
        let value = json!({"name": 7, "size": -1, "count": "3", "files": [{"a": 1}, 2]});
        let mut errors = FieldErrors::default();
        let body: Body = read_body("", &value, &mut errors).unwrap();
        assert!(body.name.string("name", 1..=10, &mut errors).is_none());
        assert!(body.size.integer("size", 1..=10, &mut errors).is_none());
        assert!(
            body.missing
                .string("missing", 1..=10, &mut errors)
                .is_none()
        );
        assert!(body.count.integer("count", 1..=10, &mut errors).is_none());
        let files = body
            .files
            .array("files", 1..=5, &mut errors, |path, v, errors| {
                let item: Item = read_body(&path, v, errors)?;
                item.a.integer(&field_path(&path, "a"), 1..=1, errors)
            });
        assert!(files.is_none());
        assert_eq!(errors.0["name"], vec!["must be a string"]);
        assert_eq!(errors.0["size"], vec!["must be between 1 and 10"]);
        assert_eq!(errors.0["missing"], vec!["is required"]);
        assert_eq!(errors.0["count"], vec!["must be an integer"]);
        assert_eq!(errors.0["files[1]"], vec!["must be an object"]);
        assert!(!errors.0.contains_key("files[0].a"));
    }

    #[test]
    fn null_is_absent_and_a_body_that_is_not_an_object_is_refused() {
        let mut errors = FieldErrors::default();
        let body: Body = read_body("", &json!({"name": null}), &mut errors).unwrap();
        assert!(body.name.is_absent() && body.files.is_absent());
        assert!(errors.is_empty());
        for value in [json!([{"name": "a"}]), json!("a"), json!(null)] {
            let mut errors = FieldErrors::default();
            assert!(read_body::<Body>("", &value, &mut errors).is_none());
            assert_eq!(errors.0["body"], vec!["must be an object"]);
        }
    }

    #[test]
    fn control_characters_are_refused_by_field_kind() {
        assert!(text_problem("a\0b", TextKind::Line).is_some());
        assert!(text_problem("bell\u{7}", TextKind::Multiline).is_some());
        assert!(text_problem("tab\there", TextKind::Line).is_some());
        assert_eq!(text_problem("tab\there\r\nline", TextKind::Multiline), None);
        assert_eq!(text_problem("Café 🧱 مرحبا", TextKind::Line), None);
    }

    #[test]
    fn empty_array_is_a_schema_violation() {
        let files = Raw(Some(json!([])));
        let mut errors = FieldErrors::default();
        let files = files.array("files", 1..=5, &mut errors, |_, _, _| Some(()));
        assert!(files.is_none());
        assert!(errors.0["files"][0].contains("1 to 5"));
    }
}
