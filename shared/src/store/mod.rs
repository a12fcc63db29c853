//! Every SQL statement of the API, one function each, grouped by table.
//!
//! The statements are `sqlx::query!` macros: checked at compile time
//! against the schema of `migrations/`, through the offline data committed
//! in `.sqlx/` (`SQLX_OFFLINE=true` is the default, `.cargo/config.toml`;
//! `scripts/sqlx-check` fails while that data is stale). A services module
//! says what a request does; the SQL it needs lives here.
//!
//! Each function takes the [`Executor`] it runs on: `&Db` for a statement
//! that is a transaction of its own, `&mut Tx` inside a caller's
//! transaction. Both mark every statement unnamed (shared/src/db.rs,
//! docs/adr/0002-transaction-pooler.md), and they are the only executors
//! accepted here, so no statement can reach Postgres another way.

use sqlx::Postgres;

use crate::db::{Db, Tx};

pub mod files;
pub mod mocs;
pub mod parts;
pub mod quotas;
pub mod sessions;

pub use files::FileRow;
pub use sessions::SessionRow;

/// What a store function runs its statement on: [`Db`] (a transaction of
/// its own) or [`Tx`] (the caller's).
pub trait Executor<'c>: sqlx::Executor<'c, Database = Postgres> + sealed::Sealed {}

impl<'c> Executor<'c> for &'c Db {}
impl<'c> Executor<'c> for &'c mut Tx {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for &crate::db::Db {}
    impl Sealed for &mut crate::db::Tx {}
}
