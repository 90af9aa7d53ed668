//! Per-project quota limits, for the services that keep them in a `(project_id, resource,
//! hard_limit)` table of their own (`cmp_quotas`, `vol_quotas`): the limits set, setting one,
//! and going back to the defaults. What the defaults are and what is in use is each
//! service's.

use sqlx::{Any, Executor, Row};

/// A service's quota table. The name is a constant of the service's code, never input, so
/// formatting it into the SQL is safe.
#[derive(Debug, Clone, Copy)]
pub struct QuotaTable(pub &'static str);

impl QuotaTable {
    /// The limits set for `project` (a resource without a row has its default).
    pub async fn limits<'c, E: Executor<'c, Database = Any>>(
        self,
        e: E,
        project: &str,
    ) -> sqlx::Result<Vec<(String, i64)>> {
        let sql = format!(
            "SELECT resource, hard_limit FROM {} WHERE project_id = $1",
            self.0
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project.to_owned())
            .fetch_all(e)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("resource")?, r.try_get("hard_limit")?)))
            .collect()
    }

    pub async fn set<'c, E: Executor<'c, Database = Any>>(
        self,
        e: E,
        project: &str,
        resource: &str,
        limit: i64,
    ) -> sqlx::Result<()> {
        let sql = format!(
            "INSERT INTO {} (project_id, resource, hard_limit) VALUES ($1, $2, $3) \
             ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
            self.0
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project.to_owned())
            .bind(resource.to_owned())
            .bind(limit)
            .execute(e)
            .await?;
        Ok(())
    }

    /// Back to the defaults: every limit set for `project` goes.
    pub async fn reset<'c, E: Executor<'c, Database = Any>>(
        self,
        e: E,
        project: &str,
    ) -> sqlx::Result<()> {
        let sql = format!("DELETE FROM {} WHERE project_id = $1", self.0);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project.to_owned())
            .execute(e)
            .await?;
        Ok(())
    }
}
