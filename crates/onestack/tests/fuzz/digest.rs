//! The database's content in one read, to prove that a refused request changed nothing.

use std::collections::BTreeMap;

use sqlx::Row;

/// Tables the cloud itself writes on a timer (host heartbeats), whatever the requests do.
const MOVING_TABLES: &[&str] = &["net_hosts", "cmp_hosts"];

/// One query that renders every row of every table, built once from the schema.
pub struct Digest {
    query: String,
}

impl Digest {
    pub async fn new(pool: &onestack_db::Pool, postgres: bool) -> Digest {
        if postgres {
            return Self::of_postgres(pool).await;
        }
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .expect("the schema is readable")
        .iter()
        .map(|row| row.get::<String, _>(0))
        .filter(|name| !MOVING_TABLES.contains(&name.as_str()))
        .collect();
        let mut parts = Vec::new();
        for table in &tables {
            let columns: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info($1)")
                .bind(table)
                .fetch_all(pool)
                .await
                .expect("the table's columns are readable")
                .iter()
                .map(|row| format!("quote(\"{}\")", row.get::<String, _>(0)))
                .collect();
            parts.push(format!(
                "SELECT '{table}', coalesce(group_concat(r, char(10)), '') FROM \
                 (SELECT {} AS r FROM \"{table}\" ORDER BY 1)",
                columns.join(" || ',' || ")
            ));
        }
        Digest {
            query: parts.join(" UNION ALL "),
        }
    }

    /// The same on PostgreSQL: each row as its text form, sorted.
    async fn of_postgres(pool: &onestack_db::Pool) -> Digest {
        let tables: Vec<String> = sqlx::query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%' ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .expect("the schema is readable")
        .iter()
        .map(|row| row.get::<String, _>(0))
        .filter(|name| !MOVING_TABLES.contains(&name.as_str()))
        .collect();
        let parts: Vec<String> = tables
            .iter()
            .map(|table| {
                format!(
                    "SELECT '{table}', coalesce(string_agg(t::text, chr(10) ORDER BY t::text), '') \
                     FROM \"{table}\" t"
                )
            })
            .collect();
        Digest {
            query: parts.join(" UNION ALL "),
        }
    }

    /// Every table's rows, by table name.
    pub async fn take(&self, pool: &onestack_db::Pool) -> BTreeMap<String, String> {
        // Built from the schema's own table and column names, each quoted.
        sqlx::query(sqlx::AssertSqlSafe(self.query.clone()))
            .fetch_all(pool)
            .await
            .expect("the database is readable")
            .iter()
            .map(|row| (row.get::<String, _>(0), row.get::<String, _>(1)))
            .collect()
    }
}

/// The tables whose rows differ.
pub fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    before
        .iter()
        .filter(|(table, rows)| after.get(*table) != Some(rows))
        .map(|(table, _)| table.clone())
        .collect()
}
