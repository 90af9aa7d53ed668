//! Role assignments of users and groups on projects, domains and the system.

use onestack_db::{Pool, Row, Sql};

use super::{Statement, fetch_all, flag, text};
use crate::model::{ActorType, Assignment, TargetType};

fn assignment(row: &Row) -> sqlx::Result<Assignment> {
    let actor_type = match text(row, "actor_type")?.as_str() {
        "group" => ActorType::Group,
        _ => ActorType::User,
    };
    let target_type = match text(row, "target_type")?.as_str() {
        "domain" => TargetType::Domain,
        "system" => TargetType::System,
        _ => TargetType::Project,
    };
    Ok(Assignment {
        actor_type,
        actor_id: text(row, "actor_id")?,
        target_type,
        target_id: text(row, "target_id")?,
        role_id: text(row, "role_id")?,
        inherited: flag(row, "inherited")?,
    })
}

/// `sql` with the assignment bound as `$1` to `$6`: actor type and id, target type and id,
/// role, inherited.
fn assignment_columns<'q>(sql: &'static str, a: &'q Assignment) -> Statement<'q> {
    sqlx::query(sql)
        .bind(a.actor_type.as_str())
        .bind(&a.actor_id)
        .bind(a.target_type.as_str())
        .bind(&a.target_id)
        .bind(&a.role_id)
        .bind(i64::from(a.inherited))
}

pub async fn grant(pool: &Pool, a: &Assignment) -> sqlx::Result<()> {
    if exists(pool, a).await? {
        return Ok(());
    }
    let sql = "INSERT INTO assignments (actor_type, actor_id, target_type, target_id, role_id, inherited) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    assignment_columns(sql, a).execute(pool).await?;
    Ok(())
}

pub async fn exists(pool: &Pool, a: &Assignment) -> sqlx::Result<bool> {
    let sql = "SELECT 1 FROM assignments WHERE actor_type = $1 AND actor_id = $2 AND target_type = $3 \
         AND target_id = $4 AND role_id = $5 AND inherited = $6";
    let found = assignment_columns(sql, a).fetch_optional(pool).await?;
    Ok(found.is_some())
}

pub async fn revoke(pool: &Pool, a: &Assignment) -> sqlx::Result<bool> {
    let sql = "DELETE FROM assignments WHERE actor_type = $1 AND actor_id = $2 AND target_type = $3 \
         AND target_id = $4 AND role_id = $5 AND inherited = $6";
    let done = assignment_columns(sql, a).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}

#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub actor: Option<(ActorType, String)>,
    pub target: Option<(TargetType, Option<String>)>,
    pub role_id: Option<String>,
}

pub async fn list(pool: &Pool, filter: &AssignmentFilter) -> sqlx::Result<Vec<Assignment>> {
    let mut sql = Sql::new("SELECT * FROM assignments");
    if let Some((kind, id)) = &filter.actor {
        sql.and("actor_type = {}", kind.as_str())
            .and("actor_id = {}", id.as_str());
    }
    if let Some((kind, id)) = &filter.target {
        sql.and("target_type = {}", kind.as_str())
            .and_eq_opt("target_id", id.as_deref());
    }
    sql.and_eq_opt("role_id", filter.role_id.as_deref());
    sql.push(" ORDER BY actor_type, actor_id, target_type, target_id, role_id");
    fetch_all(pool, &sql, assignment).await
}

/// Ids of the roles a user holds directly or through groups on one target.
pub async fn direct_role_ids(
    pool: &Pool,
    user_id: &str,
    target_type: TargetType,
    target_id: &str,
) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT role_id FROM assignments WHERE target_type = $1 AND target_id = $2 AND inherited = 0 \
         AND ((actor_type = 'user' AND actor_id = $3) OR (actor_type = 'group' AND actor_id IN \
         (SELECT group_id FROM user_groups WHERE user_id = $3)))",
    )
    .bind(target_type.as_str())
    .bind(target_id)
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| text(r, "role_id")).collect()
}

/// Ids of the targets of one type where a user holds any role (directly or through groups).
pub async fn target_ids_for_user(
    pool: &Pool,
    user_id: &str,
    target_type: TargetType,
) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT target_id FROM assignments WHERE target_type = $1 AND inherited = 0 \
         AND ((actor_type = 'user' AND actor_id = $2) OR (actor_type = 'group' AND actor_id IN \
         (SELECT group_id FROM user_groups WHERE user_id = $2)))",
    )
    .bind(target_type.as_str())
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| text(r, "target_id")).collect()
}
