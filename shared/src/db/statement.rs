//! A statement with its parameters, sent whole (module docs of `crate::db`),
//! and the reading of its rows.
//!
//! `crate::store`'s `query!` macros build these: each parameter carries the
//! Postgres type it is declared with in the Parse message ([`Param`]), so
//! the server needs no Describe round trip before it binds.

use std::marker::PhantomData;

use chrono::{NaiveDate, NaiveDateTime};
use futures::TryStreamExt;
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use super::{Error, Executor, Result};

/// A Rust value bound as a statement parameter, with the type it is
/// declared as. The types are those sqlx's compile-time check pairs with
/// the same Rust types (`crate::store`), so the check covers these too.
pub trait Param: ToSql + Send + Sync {
    fn pg_type() -> Type;
}

macro_rules! params {
    ($($rust:ty => $pg:ident / $array:ident),* $(,)?) => {
        $(
            impl Param for $rust {
                fn pg_type() -> Type {
                    Type::$pg
                }
            }
            impl Param for Vec<$rust> {
                fn pg_type() -> Type {
                    Type::$array
                }
            }
            impl Param for &[$rust] {
                fn pg_type() -> Type {
                    Type::$array
                }
            }
            impl Param for &Vec<$rust> {
                fn pg_type() -> Type {
                    Type::$array
                }
            }
        )*
    };
}

params! {
    Uuid => UUID / UUID_ARRAY,
    &str => TEXT / TEXT_ARRAY,
    String => TEXT / TEXT_ARRAY,
    i32 => INT4 / INT4_ARRAY,
    i64 => INT8 / INT8_ARRAY,
    bool => BOOL / BOOL_ARRAY,
    NaiveDateTime => TIMESTAMP / TIMESTAMP_ARRAY,
    NaiveDate => DATE / DATE_ARRAY,
    serde_json::Value => JSONB / JSONB_ARRAY,
}

impl Param for &serde_json::Value {
    fn pg_type() -> Type {
        Type::JSONB
    }
}

impl Param for &String {
    fn pg_type() -> Type {
        Type::TEXT
    }
}

impl<T: Param> Param for Option<T> {
    fn pg_type() -> Type {
        T::pg_type()
    }
}

/// A value a row is read into.
pub trait FromRow: Sized {
    fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error>;
}

/// Row types read by column name. A column renamed for sqlx's check
/// (`status AS "status: SessionStatus"`, `"count!"`) is found by the name
/// before the annotation.
/// A join reads its second table's columns named with a prefix
/// (`f.id AS f_id`): `Row::from_row_prefixed(row, "f_")`.
#[macro_export]
macro_rules! from_row {
    ($row:ident { $($field:ident),* $(,)? }) => {
        impl $crate::db::FromRow for $row {
            fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
                Self::from_row_prefixed(row, "")
            }
        }

        impl $row {
            /// The row's columns, each named with `prefix` before it.
            pub fn from_row_prefixed(
                row: &tokio_postgres::Row,
                prefix: &str,
            ) -> Result<Self, tokio_postgres::Error> {
                Ok(Self {
                    $($field: $crate::db::column_prefixed(row, prefix, stringify!($field))?,)*
                })
            }
        }
    };
}

/// Column `name` of `row`, looked up as [`from_row!`] says.
pub fn column<'r, T: FromSql<'r>>(row: &'r Row, name: &str) -> Result<T, tokio_postgres::Error> {
    column_prefixed(row, "", name)
}

/// Column `prefix` + `name` of `row`: the first whose name, without its
/// annotation, is that.
pub fn column_prefixed<'r, T: FromSql<'r>>(
    row: &'r Row,
    prefix: &str,
    name: &str,
) -> Result<T, tokio_postgres::Error> {
    let index = row
        .columns()
        .iter()
        .position(|column| names(column.name(), prefix, name));
    match index {
        Some(index) => row.try_get(index),
        // The driver's own "column not found" error.
        None => row.try_get(name),
    }
}

/// Whether `column` is `prefix` + `name`, bare or with sqlx's annotation
/// (`status: SessionStatus`, `count!`, `previous_lock?`). Compared in place:
/// every field of every row read looks its column up this way, so it must
/// not split or trim the names it passes over.
fn names(column: &str, prefix: &str, name: &str) -> bool {
    column
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(name))
        .is_some_and(|annotation| {
            let annotation = annotation.trim_start();
            annotation.is_empty() || annotation.starts_with([':', '!', '?'])
        })
}

impl<A, B> FromRow for (A, B)
where
    A: for<'r> FromSql<'r>,
    B: for<'r> FromSql<'r>,
{
    fn from_row(row: &Row) -> Result<Self, tokio_postgres::Error> {
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

/// A statement and its parameters, not yet sent.
pub struct Statement<'a> {
    sql: &'static str,
    params: Vec<(Box<dyn ToSql + Send + Sync + 'a>, Type)>,
}

impl<'a> Statement<'a> {
    pub fn new(sql: &'static str) -> Self {
        Self {
            sql,
            params: Vec::new(),
        }
    }

    /// The next parameter (`$1`, `$2`, ... in order).
    #[must_use]
    pub fn bind<T: Param + 'a>(mut self, value: T) -> Self {
        self.params.push((Box::new(value), T::pg_type()));
        self
    }

    /// The rows read as `R`.
    pub fn reading<R: ReadRow>(self) -> Reading<'a, R> {
        Reading {
            statement: self,
            row: PhantomData,
        }
    }

    /// The first column of each row, as `T`.
    pub fn scalar<T: for<'r> FromSql<'r>>(self) -> Reading<'a, First<T>> {
        self.reading()
    }

    /// Runs it; the rows affected.
    pub async fn execute(self, db: impl Executor) -> Result<u64> {
        Ok(db.run(self).await?.1)
    }

    /// Its SQL, the key it is prepared under ([`super::Statements::Named`]).
    pub(super) fn sql(&self) -> &'static str {
        self.sql
    }

    /// Its parameters' types, as declared in its Parse message.
    pub(super) fn types(&self) -> impl Iterator<Item = &Type> {
        self.params.iter().map(|(_, ty)| ty)
    }

    fn values(&self) -> impl ExactSizeIterator<Item = &(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|(value, _)| value.as_ref() as &(dyn ToSql + Sync))
    }

    /// Sends it on `client` unnamed, parsed with its parameter types, in one
    /// write, and reads the whole answer.
    pub(super) async fn run_unnamed(self, client: &Client) -> Result<(Vec<Row>, u64)> {
        let params = self
            .params
            .iter()
            .map(|(value, ty)| (value.as_ref() as &(dyn ToSql + Sync), ty.clone()));
        collect(client.query_typed_raw(self.sql, params).await?).await
    }

    /// Binds and executes `prepared` (this statement, prepared on `client`)
    /// in one write, and reads the whole answer.
    pub(super) async fn run_prepared(
        self,
        client: &Client,
        prepared: &tokio_postgres::Statement,
    ) -> Result<(Vec<Row>, u64)> {
        collect(client.query_raw(prepared, self.values()).await?).await
    }
}

/// Every row of an answer, and the rows it affected.
async fn collect(stream: tokio_postgres::RowStream) -> Result<(Vec<Row>, u64)> {
    futures::pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(row) = stream.try_next().await? {
        rows.push(row);
    }
    let affected = stream.rows_affected().unwrap_or(0);
    Ok((rows, affected))
}

/// How a row is read into the value its caller gets: a [`FromRow`] type
/// whole, or the first column alone ([`First`]).
pub trait ReadRow {
    type Value;
    fn read(row: &Row) -> Result<Self::Value, tokio_postgres::Error>;
}

impl<R: FromRow> ReadRow for R {
    type Value = R;
    fn read(row: &Row) -> Result<R, tokio_postgres::Error> {
        R::from_row(row)
    }
}

/// Reads the first column of a row as `T` (`query_scalar!`).
pub struct First<T>(PhantomData<fn() -> T>);

impl<T: for<'r> FromSql<'r>> ReadRow for First<T> {
    type Value = T;
    fn read(row: &Row) -> Result<T, tokio_postgres::Error> {
        row.try_get(0)
    }
}

/// A statement whose rows are read as `R`.
pub struct Reading<'a, R> {
    statement: Statement<'a>,
    row: PhantomData<fn() -> R>,
}

impl<R: ReadRow> Reading<'_, R> {
    pub async fn fetch_all(self, db: impl Executor) -> Result<Vec<R::Value>> {
        let (rows, _) = db.run(self.statement).await?;
        rows.iter()
            .map(|row| R::read(row).map_err(Error::from))
            .collect()
    }

    pub async fn fetch_optional(self, db: impl Executor) -> Result<Option<R::Value>> {
        let (rows, _) = db.run(self.statement).await?;
        rows.first()
            .map(|row| R::read(row).map_err(Error::from))
            .transpose()
    }

    pub async fn fetch_one(self, db: impl Executor) -> Result<R::Value> {
        self.fetch_optional(db).await?.ok_or(Error::RowNotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_column_names_are_found_by_their_plain_name() {
        assert!(names("status: SessionStatus", "", "status"));
        assert!(names("status : SessionStatus", "", "status"));
        assert!(names("count!", "", "count"));
        assert!(names("previous_lock?", "", "previous_lock"));
        assert!(names("id", "", "id"));
        assert!(names("f_id", "f_", "id"));
        assert!(names("f_status: FileStatus", "f_", "status"));
    }

    #[test]
    fn a_column_is_not_found_by_a_prefix_of_its_name_nor_by_another_tables_prefix() {
        assert!(!names("idx", "", "id"));
        assert!(!names("id_token", "", "id"));
        assert!(!names("f_id", "", "id"));
        assert!(!names("s_id", "f_", "id"));
        assert!(!names("status", "", "status: SessionStatus"));
        assert!(!names("status_x: SessionStatus", "", "status"));
    }

    #[test]
    fn parameters_are_declared_with_the_types_sqlx_pairs_with_them() {
        assert_eq!(<Option<i64>>::pg_type(), Type::INT8);
        assert_eq!(<&[Uuid]>::pg_type(), Type::UUID_ARRAY);
        assert_eq!(<Vec<&str>>::pg_type(), Type::TEXT_ARRAY);
        assert_eq!(<&serde_json::Value>::pg_type(), Type::JSONB);
    }
}
