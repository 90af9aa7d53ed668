//! Roles and implied roles.

use onestack_db::{Pool, Row, Sql};

use super::{extra, extra_json, fetch_all, fetch_one, text};
use crate::model::Role;

fn role(row: &Row) -> sqlx::Result<Role> {
    let domain_id = text(row, "domain_id")?;
    Ok(Role {
        id: text(row, "id")?,
        name: text(row, "name")?,
        domain_id: (!domain_id.is_empty()).then_some(domain_id),
        description: text(row, "description")?,
        extra: extra(row)?,
    })
}

pub async fn get(pool: &Pool, id: &str) -> sqlx::Result<Option<Role>> {
    fetch_one(pool, "SELECT * FROM roles WHERE id = $1", id, role).await
}

/// Roles filtered by name and by domain (`Some(None)` = global roles only).
pub async fn list(
    pool: &Pool,
    name: Option<&str>,
    domain_id: Option<Option<&str>>,
) -> sqlx::Result<Vec<Role>> {
    let mut sql = Sql::new("SELECT * FROM roles");
    sql.and_eq_opt("name", name);
    if let Some(domain_id) = domain_id {
        sql.and("domain_id = {}", domain_id.unwrap_or(""));
    }
    sql.push(" ORDER BY name");
    fetch_all(pool, &sql, role).await
}

pub async fn insert(pool: &Pool, r: &Role) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO roles (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(r.domain_id.clone().unwrap_or_default())
    .bind(&r.description)
    .bind(extra_json(&r.extra))
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn update(pool: &Pool, r: &Role) -> sqlx::Result<()> {
    sqlx::query("UPDATE roles SET name = $2, description = $3, extra = $4 WHERE id = $1")
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.description)
        .bind(extra_json(&r.extra))
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete(pool: &Pool, id: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    for statement in [
        "DELETE FROM assignments WHERE role_id = $1",
        "DELETE FROM implied_roles WHERE prior_role_id = $1 OR implied_role_id = $1",
        "DELETE FROM application_credential_roles WHERE role_id = $1",
        "DELETE FROM roles WHERE id = $1",
    ] {
        sqlx::query(statement).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// All (prior, implied) pairs.
pub async fn implications(pool: &Pool) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT prior_role_id, implied_role_id FROM implied_roles ORDER BY prior_role_id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((text(r, "prior_role_id")?, text(r, "implied_role_id")?)))
        .collect()
}

pub async fn add_implication(pool: &Pool, prior: &str, implied: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES ($1, $2)")
        .bind(prior)
        .bind(implied)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn remove_implication(pool: &Pool, prior: &str, implied: &str) -> sqlx::Result<bool> {
    let done =
        sqlx::query("DELETE FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2")
            .bind(prior)
            .bind(implied)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() > 0)
}
