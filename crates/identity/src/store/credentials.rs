//! Application credentials, EC2-style credentials and token revocation events.

use onestack_db::{Pool, Row, RowExt, Sql, now_micros};

use super::{
    Statement, execute_by_id, extra, extra_json, fetch_all, fetch_one, flag, opt_text, text,
};
use crate::model::{AppCredential, Credential};

async fn app_credential(pool: &Pool, row: &Row) -> sqlx::Result<AppCredential> {
    let id = text(row, "id")?;
    let role_rows = sqlx::query(
        "SELECT role_id FROM application_credential_roles WHERE application_credential_id = $1 ORDER BY role_id",
    )
    .bind(&id)
    .fetch_all(pool)
    .await?;
    Ok(AppCredential {
        id,
        name: text(row, "name")?,
        user_id: text(row, "user_id")?,
        project_id: text(row, "project_id")?,
        secret_hash: text(row, "secret_hash")?,
        description: opt_text(row, "description")?,
        expires_at: row.try_get("expires_at")?,
        unrestricted: flag(row, "unrestricted")?,
        role_ids: role_rows
            .iter()
            .map(|r| text(r, "role_id"))
            .collect::<sqlx::Result<_>>()?,
    })
}

pub async fn get_app_credential(pool: &Pool, id: &str) -> sqlx::Result<Option<AppCredential>> {
    let row = sqlx::query("SELECT * FROM application_credentials WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(row) => Ok(Some(app_credential(pool, &row).await?)),
        None => Ok(None),
    }
}

pub async fn list_app_credentials(
    pool: &Pool,
    user_id: &str,
    name: Option<&str>,
) -> sqlx::Result<Vec<AppCredential>> {
    let mut sql = Sql::new("SELECT * FROM application_credentials WHERE user_id = $1");
    sql.bind(user_id);
    sql.and_eq_opt("name", name);
    sql.push(" ORDER BY name");
    let rows = sql.query().fetch_all(pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(app_credential(pool, row).await?);
    }
    Ok(out)
}

pub async fn insert_app_credential(pool: &Pool, a: &AppCredential) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO application_credentials (id, name, user_id, project_id, secret_hash, description, expires_at, \
         unrestricted, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.user_id)
    .bind(&a.project_id)
    .bind(&a.secret_hash)
    .bind(a.description.clone())
    .bind(a.expires_at)
    .bind(i64::from(a.unrestricted))
    .bind(now_micros())
    .execute(&mut *tx)
    .await?;
    for role_id in &a.role_ids {
        sqlx::query("INSERT INTO application_credential_roles (application_credential_id, role_id) VALUES ($1, $2)")
            .bind(&a.id)
            .bind(role_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

pub async fn delete_app_credential(pool: &Pool, id: &str) -> sqlx::Result<()> {
    execute_by_id(
        pool,
        "DELETE FROM application_credentials WHERE id = $1",
        id,
    )
    .await
}

/// A stored credential with its blob still encrypted.
pub struct StoredCredential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub credential_type: String,
    pub encrypted_blob: String,
    pub extra: crate::model::Extra,
}

fn stored(row: &Row) -> sqlx::Result<StoredCredential> {
    Ok(StoredCredential {
        id: text(row, "id")?,
        user_id: text(row, "user_id")?,
        project_id: opt_text(row, "project_id")?,
        credential_type: text(row, "type")?,
        encrypted_blob: text(row, "encrypted_blob")?,
        extra: extra(row)?,
    })
}

pub async fn get_credential(pool: &Pool, id: &str) -> sqlx::Result<Option<StoredCredential>> {
    fetch_one(pool, "SELECT * FROM credentials WHERE id = $1", id, stored).await
}

pub async fn list_credentials(
    pool: &Pool,
    user_id: Option<&str>,
    credential_type: Option<&str>,
) -> sqlx::Result<Vec<StoredCredential>> {
    let mut sql = Sql::new("SELECT * FROM credentials");
    sql.and_eq_opt("user_id", user_id)
        .and_eq_opt("type", credential_type);
    sql.push(" ORDER BY created_at");
    fetch_all(pool, &sql, stored).await
}

/// `sql` (an insert or an update) with the credential's columns bound as `$1` (id) to `$6`.
fn credential_columns<'q>(
    sql: &'static str,
    c: &'q Credential,
    encrypted_blob: &'q str,
) -> Statement<'q> {
    sqlx::query(sql)
        .bind(&c.id)
        .bind(&c.user_id)
        .bind(c.project_id.clone())
        .bind(&c.credential_type)
        .bind(encrypted_blob)
        .bind(extra_json(&c.extra))
}

pub async fn insert_credential(
    pool: &Pool,
    c: &Credential,
    encrypted_blob: &str,
) -> sqlx::Result<()> {
    let sql = "INSERT INTO credentials (id, user_id, project_id, type, encrypted_blob, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)";
    credential_columns(sql, c, encrypted_blob)
        .bind(now_micros())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn update_credential(
    pool: &Pool,
    c: &Credential,
    encrypted_blob: &str,
) -> sqlx::Result<()> {
    let sql = "UPDATE credentials SET user_id = $2, project_id = $3, type = $4, encrypted_blob = $5, extra = $6 WHERE id = $1";
    credential_columns(sql, c, encrypted_blob)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete_credential(pool: &Pool, id: &str) -> sqlx::Result<()> {
    execute_by_id(pool, "DELETE FROM credentials WHERE id = $1", id).await
}

/// What a revocation event matches: tokens with this audit id; or tokens issued until now
/// of a user, of a project, or of a user on a project.
#[derive(Debug, Default, Clone, Copy)]
pub struct Revocation<'a> {
    pub audit_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub project_id: Option<&'a str>,
}

/// Records a revocation event, kept until every token it could match has expired.
pub async fn revoke(pool: &Pool, event: Revocation<'_>, expires_at: i64) -> sqlx::Result<()> {
    let now = now_micros();
    sqlx::query("DELETE FROM revocation_events WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO revocation_events (id, audit_id, user_id, project_id, issued_before, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::model::new_id())
    .bind(event.audit_id.map(str::to_owned))
    .bind(event.user_id.map(str::to_owned))
    .bind(event.project_id.map(str::to_owned))
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether a token with these audit ids, for this user and project scope, issued at
/// `issued_at`, is revoked.
pub async fn is_revoked(
    pool: &Pool,
    audit_ids: &[String],
    user_id: &str,
    project_id: Option<&str>,
    issued_at: i64,
) -> sqlx::Result<bool> {
    let mut sql = Sql::new(
        "SELECT 1 FROM revocation_events WHERE (user_id = $1 AND project_id IS NULL AND audit_id IS NULL \
         AND issued_before >= $2)",
    );
    sql.bind(user_id);
    sql.bind(issued_at);
    if let Some(project_id) = project_id {
        let p = sql.bind(project_id);
        sql.push(&format!(
            " OR (project_id = {p} AND (user_id IS NULL OR user_id = $1) AND issued_before >= $2)"
        ));
    }
    for audit_id in audit_ids {
        let placeholder = sql.bind(audit_id.as_str());
        sql.push(&format!(" OR audit_id = {placeholder}"));
    }
    sql.push(" LIMIT 1");
    Ok(sql.query().fetch_optional(pool).await?.is_some())
}
