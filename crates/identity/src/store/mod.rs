//! SQL for the identity service, one file per area. Every function takes the pool (or a
//! transaction) explicitly; handlers never write SQL.

pub mod assignments;
pub mod catalog;
pub mod credentials;
pub mod groups;
pub mod projects;
pub mod roles;
pub mod users;

use onestack_db::{Row, RowExt};
use serde_json::Value;

use crate::model::Extra;

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
