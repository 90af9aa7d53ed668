//! SQL for the identity service, one file per area. Every function takes the pool (or a
//! transaction) explicitly; handlers never write SQL.

pub mod assignments;
pub mod catalog;
pub mod credentials;
pub mod generation;
pub mod groups;
pub mod projects;
pub mod roles;
pub mod users;

use onestack_db::{Pool, Row, RowExt, Sql};
use serde_json::Value;
use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

use crate::model::Extra;

/// A statement with its values bound, ready to run.
pub(crate) type Statement<'q> = Query<'q, Any, AnyArguments>;

/// The row (if any) `sql` selects with `key` (an id, a name) as `$1`, read by `read`.
pub(crate) async fn fetch_one<T>(
    pool: &Pool,
    sql: &'static str,
    key: &str,
    read: fn(&Row) -> sqlx::Result<T>,
) -> sqlx::Result<Option<T>> {
    let row = sqlx::query(sql).bind(key).fetch_optional(pool).await?;
    row.as_ref().map(read).transpose()
}

/// Every row `sql` selects, each read by `read`.
pub(crate) async fn fetch_all<T>(
    pool: &Pool,
    sql: &Sql,
    read: fn(&Row) -> sqlx::Result<T>,
) -> sqlx::Result<Vec<T>> {
    sql.query()
        .fetch_all(pool)
        .await?
        .iter()
        .map(read)
        .collect()
}

/// Runs `sql` (a delete by id, say) with `id` as `$1`.
pub(crate) async fn execute_by_id(pool: &Pool, sql: &'static str, id: &str) -> sqlx::Result<()> {
    sqlx::query(sql).bind(id).execute(pool).await?;
    Ok(())
}

pub(crate) fn text(row: &Row, column: &str) -> sqlx::Result<String> {
    row.try_get::<String, _>(column)
}

pub(crate) fn opt_text(row: &Row, column: &str) -> sqlx::Result<Option<String>> {
    row.try_get::<Option<String>, _>(column)
}

pub(crate) fn flag(row: &Row, column: &str) -> sqlx::Result<bool> {
    row.try_get::<i64, _>(column).map(|v| v != 0)
}

pub(crate) fn extra(row: &Row) -> sqlx::Result<Extra> {
    let raw = text(row, "extra")?;
    Ok(match serde_json::from_str(&raw) {
        Ok(Value::Object(map)) => map,
        _ => Extra::new(),
    })
}

pub(crate) fn extra_json(extra: &Extra) -> String {
    Value::Object(extra.clone()).to_string()
}
