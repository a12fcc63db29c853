//! S3 object keys (docs/contract.md §3).

use uuid::Uuid;

use super::{Extension, FileCategory};

/// Makes a user ID safe to embed as one S3 key segment: a `sub` holding `/`
/// or `..` must never escape its prefix, so anything outside
/// `[A-Za-z0-9_-]` becomes `_`, and a segment made only of dots is impossible.
pub fn key_safe_user_id(sub: &str) -> String {
    let safe: String = sub
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "_".to_owned()
    } else {
        safe
    }
}

/// `{stage}/moc-instructions/{userId}/{sessionId}/{category}/{fileId}.{ext}`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(
        stage: &str,
        user_id: &str,
        session_id: Uuid,
        category: FileCategory,
        file_id: Uuid,
        ext: &Extension,
    ) -> Self {
        Self(format!(
            "{stage}/moc-instructions/{}/{session_id}/{category}/{file_id}.{}",
            key_safe_user_id(user_id),
            ext.as_str()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_subs_cannot_escape_their_prefix() {
        for (sub, safe) in [("../../etc", "______etc"), ("a/b", "a_b"), ("", "_")] {
            assert_eq!(key_safe_user_id(sub), safe, "{sub:?}");
        }
        let key = ObjectKey::new(
            "dev",
            "../x",
            Uuid::nil(),
            FileCategory::Instruction,
            Uuid::nil(),
            &Extension::parse("pdf").unwrap(),
        );
        assert!(!key.as_str().contains(".."));
        assert_eq!(key.as_str().split('/').count(), 6);
    }
}
