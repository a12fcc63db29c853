//! Every SQL statement of the API, one function each, grouped by table.
//!
//! The statements are written with this module's `query!`, `query_as!`
//! and `query_scalar!`, which take what sqlx's macros of the same names
//! take. Each expands to sqlx's macro in a branch that never runs, so sqlx
//! checks the statement at compile time against the schema of
//! `migrations/` through the offline data committed in `.sqlx/` (its SQL,
//! its parameters' Rust types, its columns' Rust types and nullability;
//! `scripts/sqlx-check` fails while that data is stale), and to a
//! [`crate::db::Statement`] that `crate::db` sends in one write, unnamed
//! (`docs/adr/0011-round-trips.md`). A services module says what a request
//! does; the SQL it needs lives here.
//!
//! Each function takes the [`Executor`] it runs on: `&Db` for a statement
//! that is a transaction of its own, `&Tx` inside a caller's transaction.

pub use crate::db::Executor;

/// `sqlx::query!`: checked by sqlx, run by `crate::db`; `.execute(db)`.
macro_rules! query {
    ($first:literal $(+ $more:literal)* $(, $arg:expr)* $(,)?) => {{
        if false {
            let _ = sqlx::query!($first $(+ $more)* $(, $arg)*);
        }
        $crate::db::Statement::new(concat!($first $(, $more)*))$(.bind($arg))*
    }};
}

/// `sqlx::query_as!`: rows read as `$row` (a `from_row!` type, or a tuple).
macro_rules! query_as {
    ($row:path, $first:literal $(+ $more:literal)* $(, $arg:expr)* $(,)?) => {{
        if false {
            let _ = sqlx::query_as!($row, $first $(+ $more)* $(, $arg)*);
        }
        $crate::db::Statement::new(concat!($first $(, $more)*))$(.bind($arg))*.reading::<$row>()
    }};
}

/// `sqlx::query_scalar!`: the first column of each row.
macro_rules! query_scalar {
    ($first:literal $(+ $more:literal)* $(, $arg:expr)* $(,)?) => {{
        if false {
            let _ = sqlx::query_scalar!($first $(+ $more)* $(, $arg)*);
        }
        $crate::db::Statement::new(concat!($first $(, $more)*))$(.bind($arg))*.scalar()
    }};
}

pub mod files;
pub mod mocs;
pub mod parts;
pub mod quotas;
pub mod sessions;

pub use files::FileRow;
pub use sessions::SessionRow;

/// A list of statuses as a `text[]` parameter (for `status = ANY($n)`
/// guards): sqlx checks a `text[]` parameter against `Vec<String>`.
pub fn status_names<S: Copy>(statuses: &[S], name: impl Fn(S) -> &'static str) -> Vec<String> {
    statuses.iter().map(|s| name(*s).to_owned()).collect()
}
