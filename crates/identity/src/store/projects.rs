//! Domains, projects and project tags.

use onestack_db::{Pool, Row, Sql, now_micros};

use super::{extra, extra_json, fetch_all, fetch_one, flag, opt_text, text};
use crate::model::{Domain, Project};

fn domain(row: &Row) -> sqlx::Result<Domain> {
    Ok(Domain {
        id: text(row, "id")?,
        name: text(row, "name")?,
        description: text(row, "description")?,
        enabled: flag(row, "enabled")?,
        extra: extra(row)?,
    })
}

pub async fn get_domain(pool: &Pool, id: &str) -> sqlx::Result<Option<Domain>> {
    fetch_one(pool, "SELECT * FROM domains WHERE id = $1", id, domain).await
}

pub async fn find_domain_by_name(pool: &Pool, name: &str) -> sqlx::Result<Option<Domain>> {
    fetch_one(pool, "SELECT * FROM domains WHERE name = $1", name, domain).await
}

pub async fn list_domains(
    pool: &Pool,
    name: Option<&str>,
    enabled: Option<bool>,
) -> sqlx::Result<Vec<Domain>> {
    let mut sql = Sql::new("SELECT * FROM domains");
    sql.and_eq_opt("name", name).and_eq_opt("enabled", enabled);
    sql.push(" ORDER BY name");
    fetch_all(pool, &sql, domain).await
}

pub async fn insert_domain(pool: &Pool, d: &Domain) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO domains (id, name, description, enabled, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(i64::from(d.enabled))
    .bind(extra_json(&d.extra))
    .bind(now_micros())
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn update_domain(pool: &Pool, d: &Domain) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE domains SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
    )
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(i64::from(d.enabled))
    .bind(extra_json(&d.extra))
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes a domain and everything in it, in one transaction, as Keystone does.
pub async fn delete_domain(pool: &Pool, id: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    for statement in [
        "DELETE FROM assignments WHERE target_type = 'project' AND target_id IN (SELECT id FROM projects WHERE domain_id = $1)",
        "DELETE FROM assignments WHERE target_type = 'domain' AND target_id = $1",
        "DELETE FROM assignments WHERE actor_type = 'user' AND actor_id IN (SELECT id FROM users WHERE domain_id = $1)",
        "DELETE FROM assignments WHERE actor_type = 'group' AND actor_id IN (SELECT id FROM groups WHERE domain_id = $1)",
        "DELETE FROM application_credentials WHERE project_id IN (SELECT id FROM projects WHERE domain_id = $1)",
        "DELETE FROM users WHERE domain_id = $1",
        "DELETE FROM groups WHERE domain_id = $1",
        "DELETE FROM roles WHERE domain_id = $1",
        "UPDATE projects SET parent_id = NULL WHERE domain_id = $1",
        "DELETE FROM projects WHERE domain_id = $1",
        "DELETE FROM domains WHERE id = $1",
    ] {
        sqlx::query(statement).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await
}

async fn project(pool: &Pool, row: &Row) -> sqlx::Result<Project> {
    let id = text(row, "id")?;
    let tags = tags(pool, &id).await?;
    Ok(Project {
        id,
        name: text(row, "name")?,
        domain_id: text(row, "domain_id")?,
        parent_id: opt_text(row, "parent_id")?,
        description: text(row, "description")?,
        enabled: flag(row, "enabled")?,
        extra: extra(row)?,
        tags,
    })
}

async fn tags(pool: &Pool, project_id: &str) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query("SELECT tag FROM project_tags WHERE project_id = $1 ORDER BY tag")
        .bind(project_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| text(r, "tag")).collect()
}

pub async fn get_project(pool: &Pool, id: &str) -> sqlx::Result<Option<Project>> {
    let row = sqlx::query("SELECT * FROM projects WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(row) => Ok(Some(project(pool, &row).await?)),
        None => Ok(None),
    }
}

pub async fn find_project_by_name(
    pool: &Pool,
    domain_id: &str,
    name: &str,
) -> sqlx::Result<Option<Project>> {
    let row = sqlx::query("SELECT * FROM projects WHERE domain_id = $1 AND name = $2")
        .bind(domain_id)
        .bind(name)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(row) => Ok(Some(project(pool, &row).await?)),
        None => Ok(None),
    }
}

#[derive(Debug, Default)]
pub struct ProjectFilter {
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)` selects top-level projects.
    pub parent_id: Option<Option<String>>,
    /// Only these ids (for "my projects").
    pub ids: Option<Vec<String>>,
    pub tags: Vec<String>,
    pub tags_any: Vec<String>,
    pub not_tags: Vec<String>,
    pub not_tags_any: Vec<String>,
}

pub async fn list_projects(pool: &Pool, filter: &ProjectFilter) -> sqlx::Result<Vec<Project>> {
    let mut sql = Sql::new("SELECT * FROM projects");
    sql.and_eq_opt("name", filter.name.as_deref())
        .and_eq_opt("domain_id", filter.domain_id.as_deref());
    sql.and_eq_opt("enabled", filter.enabled);
    match &filter.parent_id {
        Some(Some(parent)) => {
            sql.and("parent_id = {}", parent.as_str());
        }
        Some(None) => {
            sql.and_raw("parent_id IS NULL");
        }
        None => {}
    }
    sql.push(" ORDER BY name");
    let rows = sql.query().fetch_all(pool).await?;
    let mut projects = Vec::with_capacity(rows.len());
    for row in &rows {
        let p = project(pool, row).await?;
        let has = |t: &String| p.tags.contains(t);
        let keep = filter.ids.as_ref().is_none_or(|ids| ids.contains(&p.id))
            && filter.tags.iter().all(has)
            && (filter.tags_any.is_empty() || filter.tags_any.iter().any(has))
            && (filter.not_tags.is_empty() || !filter.not_tags.iter().all(has))
            && !filter.not_tags_any.iter().any(has);
        if keep {
            projects.push(p);
        }
    }
    Ok(projects)
}

async fn write_tags(
    tx: &mut onestack_db::Transaction<'_, onestack_db::Any>,
    p: &Project,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM project_tags WHERE project_id = $1")
        .bind(&p.id)
        .execute(&mut **tx)
        .await?;
    for tag in &p.tags {
        sqlx::query("INSERT INTO project_tags (project_id, tag) VALUES ($1, $2)")
            .bind(&p.id)
            .bind(tag)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub async fn insert_project(pool: &Pool, p: &Project) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.domain_id)
    .bind(p.parent_id.clone())
    .bind(&p.description)
    .bind(i64::from(p.enabled))
    .bind(extra_json(&p.extra))
    .bind(now_micros())
    .execute(&mut *tx)
    .await?;
    write_tags(&mut tx, p).await?;
    tx.commit().await
}

pub async fn update_project(pool: &Pool, p: &Project) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE projects SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(i64::from(p.enabled))
    .bind(extra_json(&p.extra))
    .execute(&mut *tx)
    .await?;
    write_tags(&mut tx, p).await?;
    tx.commit().await
}

pub async fn has_children(pool: &Pool, id: &str) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM projects WHERE parent_id = $1 LIMIT 1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .is_some(),
    )
}

pub async fn delete_project(pool: &Pool, id: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    for statement in [
        "DELETE FROM assignments WHERE target_type = 'project' AND target_id = $1",
        "DELETE FROM application_credentials WHERE project_id = $1",
        "UPDATE users SET default_project_id = NULL WHERE default_project_id = $1",
        "DELETE FROM projects WHERE id = $1",
    ] {
        sqlx::query(statement).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await
}
