//! The finalize request body (docs/contract.md §4.7): [`FinalizeRequest`],
//! which the handler reads and the OpenAPI document describes, validated
//! into a [`FinalizeInput`] (`domain::validate` says why its fields are
//! `Raw`). The text patterns in its schema are the C0 control-character
//! rules of `domain::validate::text_problem`.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Array, Object, SchemaType, Type};
use uuid::Uuid;

use crate::domain::{FieldErrors, Raw, TextKind, read_body, text_problem};
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct FinalizeInput {
    pub session_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub theme: Option<String>,
}

/// No C0 control character (`TextKind::Line`).
const LINE_TEXT: &str = r"^[^\x00-\x1F]*$";

/// POST /api/mocs/uploads/finalize (contract §4.7).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "uploadSessionId": crate::openapi::examples::FINALIZABLE_SESSION,
    "title": "Medieval Castle", "description": "A 2,000-piece castle.",
    "tags": ["castle", "medieval"], "theme": "Castle"
}))]
pub struct FinalizeRequest {
    #[schema(value_type = Uuid)]
    pub upload_session_id: Raw,
    /// Not blank once trimmed; unique per user (409 with `suggestedSlug`).
    #[schema(
        value_type = String,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F]*\S[^\x00-\x1F]*$"
    )]
    pub title: Raw,
    /// Tab and line breaks are allowed here.
    #[schema(value_type = Option<String>, max_length = 5000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F]*$")]
    pub description: Raw,
    /// Up to 20 tags of 1 to 50 characters.
    #[schema(schema_with = tags, required = false)]
    pub tags: Raw,
    #[schema(value_type = Option<String>, max_length = 100, pattern = r"^[^\x00-\x1F]*$")]
    pub theme: Raw,
}

fn tags() -> Array {
    let tag = Object::builder()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(50))
        .pattern(Some(LINE_TEXT));
    Array::builder()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(tag)
        .max_items(Some(20))
        .build()
}

impl FinalizeRequest {
    /// The input, if every field holds to its schema and the title is not
    /// blank (checked last, alone).
    fn validate(&self, errors: &mut FieldErrors) -> Result<FinalizeInput, ApiError> {
        if self.upload_session_id.is_absent() {
            errors.add("uploadSessionId", "is required");
        }
        let session_id = self
            .upload_session_id
            .optional_uuid("uploadSessionId", errors);
        let title = self.title.string("title", 1..=200, errors);
        let description =
            self.description
                .optional_text("description", 0..=5000, TextKind::Multiline, errors);
        let theme = self.theme.optional_string("theme", 0..=100, errors);
        let tags = match self.tags.is_absent() {
            true => Some(Vec::new()),
            false => self.tags.array("tags", 0..=20, errors, tag),
        };
        match (session_id, title, tags) {
            (Some(session_id), Some(title), Some(tags)) if errors.is_empty() => {
                let title = title.trim().to_owned();
                if title.is_empty() {
                    return Err(ApiError::invalid_field("title", "must not be blank"));
                }
                Ok(FinalizeInput {
                    session_id,
                    title,
                    description,
                    tags,
                    theme,
                })
            }
            _ => Err(ApiError::Validation(std::mem::take(errors))),
        }
    }
}

/// One tag: a string of 1 to 50 characters, no control characters.
fn tag(path: String, value: &Value, errors: &mut FieldErrors) -> Option<String> {
    let tag = value.as_str();
    let problem = tag.and_then(|tag| text_problem(tag, TextKind::Line));
    match (tag, problem) {
        (_, Some(problem)) => {
            errors.add(path, problem);
            None
        }
        (Some(tag), None) if (1..=50).contains(&tag.chars().count()) => Some(tag.to_owned()),
        _ => {
            errors.add(path, "must be a string of 1 to 50 characters");
            None
        }
    }
}

impl FinalizeInput {
    /// Reads a [`FinalizeRequest`].
    pub fn read(body: &Value) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        match read_body::<FinalizeRequest>("", body, &mut errors) {
            Some(request) => request.validate(&mut errors),
            None => Err(ApiError::Validation(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finalize_input_is_validated_field_by_field() {
        let err = FinalizeInput::read(&json!({"title": "", "tags": ["ok", 3]})).unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected a validation error");
        };
        assert!(errors.0.contains_key("uploadSessionId"));
        assert!(errors.0.contains_key("title"));
        assert!(errors.0.contains_key("tags[1]"));
    }
}
