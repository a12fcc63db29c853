//! The `status` columns of sessions and files, as types.
//!
//! Both columns are TEXT. Rows are read through [`SessionStatus::parse`] and
//! [`FileStatus::parse`], which accept every value an older writer left
//! (the old service wrote `failed` files), so a row never fails to load
//! because of its status; what each status allows is `domain::lifecycle`'s
//! business.

use serde::Serialize;
use sqlx::Postgres;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use utoipa::ToSchema;

// A session row's `status`. Two conditions refine `active` (past expiry,
// being finalized): see `domain::lifecycle::SessionState`. (A `//` comment:
// a doc comment would become the schema's description in docs/openapi.json.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Active,
    Completed,
    Expired,
    Cancelled,
}

impl SessionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Completed => "completed",
            SessionStatus::Expired => "expired",
            SessionStatus::Cancelled => "cancelled",
        }
    }

    /// An unknown value (none is written by this service) is treated as
    /// `active` so the expiry and ownership checks still apply to it.
    pub fn parse(raw: &str) -> Self {
        match raw {
            "completed" => SessionStatus::Completed,
            "expired" => SessionStatus::Expired,
            "cancelled" => SessionStatus::Cancelled,
            _ => SessionStatus::Active,
        }
    }
}

/// A file row's `status`. `failed` is a value the old service could write;
/// it behaves like `uploading`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Pending,
    Uploading,
    Completed,
}

impl FileStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            FileStatus::Pending => "pending",
            FileStatus::Uploading => "uploading",
            FileStatus::Completed => "completed",
        }
    }

    pub fn parse(raw: &str) -> Self {
        match raw {
            "pending" => FileStatus::Pending,
            "completed" => FileStatus::Completed,
            _ => FileStatus::Uploading,
        }
    }
}

/// Reads and writes a status as the TEXT it is stored as (arrays of it too,
/// for `status = ANY($n)` guards), decoding through the lenient `parse`.
macro_rules! text_column {
    ($status:ty) => {
        impl sqlx::Type<Postgres> for $status {
            fn type_info() -> PgTypeInfo {
                <&str as sqlx::Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $status {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }

        impl<'r> sqlx::Decode<'r, Postgres> for $status {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(Self::parse(<&str as sqlx::Decode<Postgres>>::decode(
                    value,
                )?))
            }
        }

        impl<'r> tokio_postgres::types::FromSql<'r> for $status {
            fn from_sql(
                ty: &tokio_postgres::types::Type,
                raw: &'r [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                Ok(Self::parse(
                    <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?,
                ))
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                <&str as tokio_postgres::types::FromSql>::accepts(ty)
            }
        }

        impl sqlx::Encode<'_, Postgres> for $status {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_column!(SessionStatus);
text_column!(FileStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_values_still_read() {
        for status in [
            SessionStatus::Active,
            SessionStatus::Completed,
            SessionStatus::Expired,
            SessionStatus::Cancelled,
        ] {
            assert_eq!(SessionStatus::parse(status.as_str()), status);
        }
        for status in [
            FileStatus::Pending,
            FileStatus::Uploading,
            FileStatus::Completed,
        ] {
            assert_eq!(FileStatus::parse(status.as_str()), status);
        }
        assert_eq!(SessionStatus::parse("archived"), SessionStatus::Active);
        assert_eq!(FileStatus::parse("failed"), FileStatus::Uploading);
    }
}
