//! The caller's sessions (docs/contract.md §4.15): what another device, or
//! the same one after its storage was cleared, resumes from.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::status::{SessionView, session_view};
use crate::auth::User;
use crate::domain::{FieldErrors, SessionStatus};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::sessions::PageAfter;
use crate::store::{self, FileRow, SessionRow};
use crate::time;

/// Sessions per page unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 20;
/// The most sessions one page holds: each carries its files, so a page
/// stays a few hundred KB at worst.
pub const MAX_PAGE: u32 = 50;

/// One page of the caller's sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionList {
    /// Each as the session status route answers it (§4.8).
    pub sessions: Vec<SessionView>,
    /// Pass it back as `cursor` for the next page; `null` on the last page.
    #[schema(example = "1764972000123456_0f3c1b2d4e5a4c6b9a570f3c1b2d4e5a")]
    pub next_cursor: Option<String>,
}

/// What a listing asks for: `status`, `limit`, `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    /// `None`: every status (`status=all`).
    pub visible: Option<SessionStatus>,
    pub limit: u32,
    pub after: Option<PageAfter>,
}

impl ListQuery {
    /// From the query parameters `param` gives. A parameter that is present
    /// must be valid, an empty one too (`status=` is not the default): 400
    /// INVALID_QUERY, every problem at once, by parameter.
    pub fn parse(param: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let visible = match param("status").as_deref().unwrap_or("active") {
            "active" => Some(SessionStatus::Active),
            "expired" => Some(SessionStatus::Expired),
            "completed" => Some(SessionStatus::Completed),
            "cancelled" => Some(SessionStatus::Cancelled),
            "all" => None,
            _ => {
                errors.add(
                    "status",
                    "must be one of active, expired, completed, cancelled, all",
                );
                None
            }
        };
        let limit = match param("limit") {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .unwrap_or_else(|| {
                    errors.add("limit", format!("must be an integer from 1 to {MAX_PAGE}"));
                    DEFAULT_PAGE
                }),
        };
        let after = param("cursor").and_then(|raw| {
            let parsed = parse_cursor(&raw);
            if parsed.is_none() {
                errors.add("cursor", "must be a nextCursor this route answered");
            }
            parsed
        });
        match errors.is_empty() {
            true => Ok(Self {
                visible,
                limit,
                after,
            }),
            false => Err(ApiError::InvalidQuery(errors)),
        }
    }
}

/// `{created_at as Unix microseconds}_{id, 32 hex digits}`: URL-safe as it
/// is, and exact (the column keeps microseconds).
fn cursor_of(session: &SessionRow) -> String {
    format!(
        "{}_{}",
        session.created_at.and_utc().timestamp_micros(),
        session.id.simple()
    )
}

fn parse_cursor(raw: &str) -> Option<PageAfter> {
    let (micros, id) = raw.split_once('_')?;
    let created_at: NaiveDateTime =
        DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    Some(PageAfter {
        created_at,
        id: Uuid::try_parse(id).ok()?,
    })
}

/// A page of the caller's sessions (§4.15): one transaction, three
/// statements (the page, its files, their recorded part numbers) in two
/// round trips. Part
/// numbers are the database's record, not S3's: parts PUT straight to S3
/// appear once §4.5 or §4.12 has reconciled them, which a resuming client
/// does anyway before it uploads.
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn list(
    state: &AppState,
    user: &User,
    query: ListQuery,
) -> Result<SessionList, ApiError> {
    let now = time::now();
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let tx = state.db().begin().await?;
    // One more than the page: whether there is a next one, without a count.
    let mut page = store::sessions::page_of_user(
        &tx,
        &user.id,
        query.visible,
        query.after,
        i64::from(query.limit) + 1,
        now,
    )
    .await?;
    let next_cursor = (page.len() > limit).then(|| {
        page.truncate(limit);
        page.last().map(cursor_of)
    });
    let ids: Vec<Uuid> = page.iter().map(|s| s.id).collect();
    // The page's files, their parts and the COMMIT: one more round trip.
    let (files, parts) = if ids.is_empty() {
        tx.commit().await?;
        (Vec::new(), Vec::new())
    } else {
        let (files, parts, ()) = futures::try_join!(
            store::files::of_sessions(&tx, &ids),
            store::parts::numbers_in_sessions(&tx, &ids),
            tx.committing(),
        )?;
        (files, parts)
    };
    let mut by_session: HashMap<Uuid, Vec<FileRow>> = HashMap::new();
    for file in files {
        by_session.entry(file.session_id).or_default().push(file);
    }
    let sessions = page
        .into_iter()
        .map(|session| {
            let files = by_session.remove(&session.id).unwrap_or_default();
            session_view(state, session, files, &parts, now)
        })
        .collect();
    Ok(SessionList {
        sessions,
        next_cursor: next_cursor.flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        ListQuery::parse(|name| map.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn the_defaults_are_the_active_sessions_twenty_at_a_time() {
        let query = parse(&[]).unwrap();
        assert_eq!(query.visible, Some(SessionStatus::Active));
        assert_eq!((query.limit, query.after), (DEFAULT_PAGE, None));
        assert_eq!(parse(&[("status", "all")]).unwrap().visible, None);
        for name in ["status", "limit", "cursor"] {
            assert!(parse(&[(name, "")]).is_err(), "{name}= is not absent");
        }
    }

    #[test]
    fn every_bad_parameter_is_named_at_once() {
        let err = parse(&[("status", "open"), ("limit", "51"), ("cursor", "x")]).unwrap_err();
        assert_eq!(err.reason(), "INVALID_QUERY");
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        let errors = &err.details().unwrap()["errors"];
        for name in ["status", "limit", "cursor"] {
            assert!(errors[name].is_array(), "{name}: {errors}");
        }
        for limit in ["0", "-1", "1.5", "ten"] {
            assert!(parse(&[("limit", limit)]).is_err(), "{limit}");
        }
    }

    #[test]
    fn a_cursor_names_the_session_it_follows_to_the_microsecond() {
        let created_at = DateTime::from_timestamp_micros(1_764_972_000_123_456)
            .unwrap()
            .naive_utc();
        let id = Uuid::new_v4();
        let raw = format!("1764972000123456_{}", id.simple());
        let query = parse(&[("cursor", &raw)]).unwrap();
        assert_eq!(query.after, Some(PageAfter { created_at, id }));
        for bad in ["1764972000123456", "abc_def", &format!("x_{}", id.simple())] {
            assert!(parse(&[("cursor", bad)]).is_err(), "{bad}");
        }
    }
}
