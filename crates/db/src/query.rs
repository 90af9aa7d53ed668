//! A tiny builder for filtered SELECTs with `$N` placeholders, which both backends accept
//! (sqlx's own `QueryBuilder<Any>` emits `?`, which PostgreSQL refuses).

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Arguments};

/// A value to bind.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Int(i64),
}

impl From<String> for Bind {
    fn from(v: String) -> Self {
        Bind::Text(v)
    }
}
impl From<&str> for Bind {
    fn from(v: &str) -> Self {
        Bind::Text(v.to_owned())
    }
}
impl From<i64> for Bind {
    fn from(v: i64) -> Self {
        Bind::Int(v)
    }
}
impl From<bool> for Bind {
    fn from(v: bool) -> Self {
        Bind::Int(i64::from(v))
    }
}

/// SQL text plus its binds, built left to right.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    text: String,
    binds: Vec<Bind>,
    has_where: bool,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            binds: Vec::new(),
            has_where: text.to_ascii_uppercase().contains(" WHERE "),
        }
    }

    /// Appends `value` as the next placeholder and returns its `$N`.
    pub fn bind(&mut self, value: impl Into<Bind>) -> String {
        self.binds.push(value.into());
        format!("${}", self.binds.len())
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Adds a condition with `WHERE` or `AND` as needed; `{}` in `condition` is the placeholder.
    pub fn and(&mut self, condition: &str, value: impl Into<Bind>) -> &mut Self {
        let placeholder = self.bind(value);
        self.and_raw(&condition.replace("{}", &placeholder))
    }

    /// Adds a condition without a value.
    pub fn and_raw(&mut self, condition: &str) -> &mut Self {
        self.text
            .push_str(if self.has_where { " AND " } else { " WHERE " });
        self.has_where = true;
        self.text.push_str(condition);
        self
    }

    /// `column = value` when a value is given.
    pub fn and_eq_opt(&mut self, column: &str, value: Option<impl Into<Bind>>) -> &mut Self {
        if let Some(value) = value {
            self.and(&format!("{column} = {{}}"), value);
        }
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments> {
        let mut arguments = AnyArguments::default();
        for bind in &self.binds {
            // Adding a String or i64 to AnyArguments does not fail.
            let _ = match bind {
                Bind::Text(s) => arguments.add(s.clone()),
                Bind::Int(i) => arguments.add(*i),
            };
        }
        // The text is built only from literals in our code; every value is a bind.
        sqlx::query_with(sqlx::AssertSqlSafe(self.text.clone()), arguments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut sql = Sql::new("SELECT * FROM t");
        sql.and("a = {}", "x")
            .and_eq_opt("b", Some(1i64))
            .and_eq_opt("c", None::<i64>)
            .and_raw("d IS NULL");
        assert_eq!(
            sql.text(),
            "SELECT * FROM t WHERE a = $1 AND b = $2 AND d IS NULL"
        );
    }
}
