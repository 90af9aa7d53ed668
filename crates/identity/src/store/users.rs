//! Users: identity, password hash and lockout counters.

use onestack_db::{Pool, Row, RowExt, Sql, now_micros};

use super::{extra, extra_json, fetch_all, fetch_one, flag, opt_text, text};
use crate::model::User;

fn user(row: &Row) -> sqlx::Result<User> {
    Ok(User {
        id: text(row, "id")?,
        name: text(row, "name")?,
        domain_id: text(row, "domain_id")?,
        enabled: flag(row, "enabled")?,
        password_hash: opt_text(row, "password_hash")?,
        default_project_id: opt_text(row, "default_project_id")?,
        extra: extra(row)?,
        failed_auth_count: row.try_get("failed_auth_count")?,
        last_failed_auth_at: row.try_get("last_failed_auth_at")?,
        password_set_at: row.try_get("password_set_at")?,
    })
}

pub async fn get(pool: &Pool, id: &str) -> sqlx::Result<Option<User>> {
    fetch_one(pool, "SELECT * FROM users WHERE id = $1", id, user).await
}

pub async fn find_by_name(pool: &Pool, domain_id: &str, name: &str) -> sqlx::Result<Option<User>> {
    let row = sqlx::query("SELECT * FROM users WHERE domain_id = $1 AND name = $2")
        .bind(domain_id)
        .bind(name)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(user).transpose()
}

pub async fn list(
    pool: &Pool,
    name: Option<&str>,
    domain_id: Option<&str>,
    enabled: Option<bool>,
    group_id: Option<&str>,
) -> sqlx::Result<Vec<User>> {
    let mut sql = Sql::new("SELECT * FROM users");
    sql.and_eq_opt("name", name)
        .and_eq_opt("domain_id", domain_id)
        .and_eq_opt("enabled", enabled);
    if let Some(group_id) = group_id {
        sql.and(
            "id IN (SELECT user_id FROM user_groups WHERE group_id = {})",
            group_id,
        );
    }
    sql.push(" ORDER BY name");
    fetch_all(pool, &sql, user).await
}

pub async fn insert(pool: &Pool, u: &User) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO users (id, name, domain_id, enabled, password_hash, default_project_id, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&u.id)
    .bind(&u.name)
    .bind(&u.domain_id)
    .bind(i64::from(u.enabled))
    .bind(u.password_hash.clone())
    .bind(u.default_project_id.clone())
    .bind(extra_json(&u.extra))
    .bind(now_micros())
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn update(pool: &Pool, u: &User) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET name = $2, enabled = $3, password_hash = $4, default_project_id = $5, extra = $6 WHERE id = $1",
    )
    .bind(&u.id)
    .bind(&u.name)
    .bind(i64::from(u.enabled))
    .bind(u.password_hash.clone())
    .bind(u.default_project_id.clone())
    .bind(extra_json(&u.extra))
    .execute(pool)
    .await?;
    Ok(())
}

/// The hashes of `user_id`'s `limit` newest passwords, newest first.
pub async fn password_history(pool: &Pool, user_id: &str, limit: i64) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT password_hash FROM password_history WHERE user_id = $1 \
         ORDER BY created_at DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|row| text(row, "password_hash")).collect()
}

/// Notes that `user_id`'s password was set to `hash` at `now`, in the history when `keep`.
pub async fn record_password(
    pool: &Pool,
    user_id: &str,
    hash: &str,
    now: i64,
    keep: bool,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET password_set_at = $2 WHERE id = $1")
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if keep {
        sqlx::query(
            "INSERT INTO password_history (user_id, password_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

pub async fn record_failed_auth(pool: &Pool, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET failed_auth_count = failed_auth_count + 1, last_failed_auth_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now_micros())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn reset_failed_auth(pool: &Pool, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET failed_auth_count = 0, last_failed_auth_at = NULL WHERE id = $1 AND failed_auth_count <> 0")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete(pool: &Pool, id: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM assignments WHERE actor_type = 'user' AND actor_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM password_history WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
