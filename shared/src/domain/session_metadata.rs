//! What a session keeps of its create request (`upload_sessions.metadata`,
//! JSONB): written and read through this one type.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{DeclaredFiles, FileMetadata};

/// The create request as the session keeps it. Sessions of the old service
/// hold other shapes: each field reads on its own, and one it cannot read
/// is absent rather than failing the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionMetadata {
    /// Per-category file counts; register holds the session to them.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub declared_files: Option<DeclaredFiles>,
    /// The files declared at create, as sent; the status shows them.
    #[serde(default, deserialize_with = "lenient")]
    pub files: Vec<Value>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
}

/// One declared file, as it is kept.
#[derive(Serialize)]
struct DeclaredFile<'a> {
    category: super::FileCategory,
    name: &'a str,
    size: super::ByteSize,
    #[serde(rename = "type")]
    mime_type: &'a str,
    ext: &'a str,
}

impl SessionMetadata {
    /// What a create keeps: the counts, the files, the title.
    pub fn of_create(declared: DeclaredFiles, files: &[FileMetadata], title: Option<&str>) -> Self {
        Self {
            declared_files: Some(declared),
            files: files
                .iter()
                .filter_map(|f| {
                    serde_json::to_value(DeclaredFile {
                        category: f.category,
                        name: &f.name,
                        size: f.size,
                        mime_type: &f.mime_type,
                        ext: f.ext.as_str(),
                    })
                    .ok()
                })
                .collect(),
            title: title.map(str::to_owned),
        }
    }

    /// A stored value read leniently (see the type); none is the default.
    pub fn read(stored: Option<&Value>) -> Self {
        stored
            .and_then(|value| Self::deserialize(value).ok())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A field that does not read as `T` is its default.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_create_is_kept_and_read_back() {
        let files: Vec<FileMetadata> = Vec::new();
        let kept = SessionMetadata::of_create(DeclaredFiles::count(&files), &files, Some("Castle"));
        assert_eq!(SessionMetadata::read(Some(&kept.to_json())), kept);
        assert_eq!(kept.to_json()["title"], "Castle");
    }

    #[test]
    fn an_old_services_shape_reads_field_by_field() {
        let old = json!({"declaredFiles": "not counts", "files": [{"n": 1}], "title": 7});
        let read = SessionMetadata::read(Some(&old));
        assert_eq!(read.declared_files, None);
        assert_eq!(read.files, vec![json!({"n": 1})]);
        assert_eq!(read.title, None);
        assert_eq!(SessionMetadata::read(None), SessionMetadata::default());
    }
}
