//! The finalize request body (docs/contract.md §4.7), validated field by field.

use serde_json::Value;
use uuid::Uuid;

use crate::domain::{FieldErrors, JsonObject, TextKind, text_problem};
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct FinalizeInput {
    pub session_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub theme: Option<String>,
}

impl FinalizeInput {
    pub fn from_json(body: &Value) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let obj = JsonObject::new("", body, &mut errors);
        if obj.is_object() && body.get("uploadSessionId").is_none_or(Value::is_null) {
            errors.add("uploadSessionId", "is required");
        }
        let session_id = obj.optional_uuid("uploadSessionId", &mut errors);
        let title = obj.string("title", 1..=200, &mut errors);
        let description =
            obj.optional_text("description", 0..=5000, TextKind::Multiline, &mut errors);
        let theme = obj.optional_string("theme", 0..=100, &mut errors);
        let tags = match body.get("tags") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(_) => obj.array("tags", 0..=20, &mut errors, |path, value, errors| {
                let tag = value.as_str();
                let problem = tag.and_then(|tag| text_problem(tag, TextKind::Line));
                match (tag, problem) {
                    (_, Some(problem)) => {
                        errors.add(path, problem);
                        None
                    }
                    (Some(tag), None) if (1..=50).contains(&tag.chars().count()) => {
                        Some(tag.to_owned())
                    }
                    _ => {
                        errors.add(path, "must be a string of 1 to 50 characters");
                        None
                    }
                }
            }),
        };
        match (session_id, title, tags) {
            (Some(session_id), Some(title), Some(tags)) if errors.is_empty() => {
                let title = title.trim().to_owned();
                if title.is_empty() {
                    return Err(ApiError::invalid_field("title", "must not be blank"));
                }
                Ok(Self {
                    session_id,
                    title,
                    description,
                    tags,
                    theme,
                })
            }
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finalize_input_is_validated_field_by_field() {
        let err = FinalizeInput::from_json(&json!({"title": "", "tags": ["ok", 3]})).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected a validation error");
        };
        assert!(errors.0.contains_key("uploadSessionId"));
        assert!(errors.0.contains_key("title"));
        assert!(errors.0.contains_key("tags[1]"));
    }
}
