//! Schema checks for JSON bodies that report every problem by field path, as
//! docs/contract.md §0 asks (`details.errors: {"files[0].size": ["…"]}`).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde_json::{Map, Value};

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

/// A JSON object under a field path, read field by field. Each accessor
/// records a problem and returns `None` rather than failing fast.
pub struct JsonObject<'a> {
    path: String,
    map: Option<&'a Map<String, Value>>,
}

impl<'a> JsonObject<'a> {
    pub fn new(path: impl Into<String>, value: &'a Value, errors: &mut FieldErrors) -> Self {
        let path = path.into();
        let map = value.as_object();
        if map.is_none() {
            errors.add(display_path(&path), "must be an object");
        }
        Self { path, map }
    }

    pub fn is_object(&self) -> bool {
        self.map.is_some()
    }

    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map?.get(key).filter(|v| !v.is_null())
    }

    pub fn string(
        &self,
        key: &str,
        chars: RangeInclusive<usize>,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        self.map?;
        match self.get(key) {
            None => {
                errors.add(self.field_path(key), "is required");
                None
            }
            Some(_) => self.optional_string(key, chars, errors),
        }
    }

    pub fn optional_string(
        &self,
        key: &str,
        chars: RangeInclusive<usize>,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        self.optional_text(key, chars, TextKind::Line, errors)
    }

    /// An optional string of `chars` characters whose control characters
    /// follow `kind`.
    pub fn optional_text(
        &self,
        key: &str,
        chars: RangeInclusive<usize>,
        kind: TextKind,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => {
                let len = s.chars().count();
                if let Some(problem) = text_problem(s, kind) {
                    errors.add(self.field_path(key), problem);
                    None
                } else if chars.contains(&len) {
                    Some(s.clone())
                } else {
                    errors.add(
                        self.field_path(key),
                        format!(
                            "must be {} to {} characters long",
                            chars.start(),
                            chars.end()
                        ),
                    );
                    None
                }
            }
            _ => {
                errors.add(self.field_path(key), "must be a string");
                None
            }
        }
    }

    pub fn integer(
        &self,
        key: &str,
        range: RangeInclusive<u64>,
        errors: &mut FieldErrors,
    ) -> Option<u64> {
        self.map?;
        if self.get(key).is_none() {
            errors.add(self.field_path(key), "is required");
            return None;
        }
        self.optional_integer(key, range, errors)
    }

    pub fn optional_integer(
        &self,
        key: &str,
        range: RangeInclusive<u64>,
        errors: &mut FieldErrors,
    ) -> Option<u64> {
        let value = self.get(key)?;
        match value.as_u64() {
            Some(n) if range.contains(&n) => Some(n),
            Some(_) => {
                errors.add(
                    self.field_path(key),
                    format!("must be between {} and {}", range.start(), range.end()),
                );
                None
            }
            None if value.is_i64() => {
                errors.add(
                    self.field_path(key),
                    format!("must be between {} and {}", range.start(), range.end()),
                );
                None
            }
            None if value.is_number() => {
                errors.add(
                    self.field_path(key),
                    format!(
                        "must be an integer between {} and {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
            None => {
                errors.add(self.field_path(key), "must be an integer");
                None
            }
        }
    }

    /// An optional string of at most `max_chars` characters that parses as
    /// `T`; the parse error is the field's message.
    pub fn optional_parsed<T>(
        &self,
        key: &str,
        max_chars: usize,
        errors: &mut FieldErrors,
    ) -> Option<T>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let raw = self.optional_string(key, 1..=max_chars, errors)?;
        raw.parse()
            .map_err(|e: T::Err| errors.add(self.field_path(key), e.to_string()))
            .ok()
    }

    pub fn optional_uuid(&self, key: &str, errors: &mut FieldErrors) -> Option<uuid::Uuid> {
        let raw = self.optional_string(key, 1..=64, errors)?;
        match uuid::Uuid::parse_str(&raw) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add(self.field_path(key), "must be a UUID");
                None
            }
        }
    }

    /// A required array of `len` items; each item is handed to `item` with its path.
    pub fn array<T>(
        &self,
        key: &str,
        len: RangeInclusive<usize>,
        errors: &mut FieldErrors,
        mut item: impl FnMut(String, &'a Value, &mut FieldErrors) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.map?;
        let path = self.field_path(key);
        let Some(value) = self.get(key) else {
            errors.add(path, "is required");
            return None;
        };
        let Some(items) = value.as_array() else {
            errors.add(path, "must be an array");
            return None;
        };
        if !len.contains(&items.len()) {
            errors.add(
                path.clone(),
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

    #[test]
    fn reports_each_problem_under_its_path() {
        let body = json!({"name": 7, "size": -1, "count": "3", "files": [{"a": 1}, 2]});
        let mut errors = FieldErrors::default();
        let obj = JsonObject::new("", &body, &mut errors);
        assert!(obj.string("name", 1..=10, &mut errors).is_none());
        assert!(obj.integer("size", 1..=10, &mut errors).is_none());
        assert!(obj.string("missing", 1..=10, &mut errors).is_none());
        assert!(obj.integer("count", 1..=10, &mut errors).is_none());
        let files = obj.array("files", 1..=5, &mut errors, |path, v, errors| {
            JsonObject::new(path, v, errors).integer("a", 1..=1, errors)
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
    fn control_characters_are_refused_by_field_kind() {
        assert!(text_problem("a\0b", TextKind::Line).is_some());
        assert!(text_problem("bell\u{7}", TextKind::Multiline).is_some());
        assert!(text_problem("tab\there", TextKind::Line).is_some());
        assert_eq!(text_problem("tab\there\r\nline", TextKind::Multiline), None);
        assert_eq!(text_problem("Café 🧱 مرحبا", TextKind::Line), None);
    }

    #[test]
    fn empty_array_is_a_schema_violation() {
        let body = json!({"files": []});
        let mut errors = FieldErrors::default();
        let obj = JsonObject::new("", &body, &mut errors);
        let files = obj.array("files", 1..=5, &mut errors, |_, _, _| Some(()));
        assert!(files.is_none());
        assert!(errors.0["files"][0].contains("1 to 5"));
    }
}
