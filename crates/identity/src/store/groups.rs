//! Groups and their members.

use onestack_db::{Pool, Row, Sql};

use super::{extra, extra_json, fetch_all, fetch_one, text};
use crate::model::Group;

fn group(row: &Row) -> sqlx::Result<Group> {
    Ok(Group {
        id: text(row, "id")?,
        name: text(row, "name")?,
        domain_id: text(row, "domain_id")?,
        description: text(row, "description")?,
        extra: extra(row)?,
    })
}

pub async fn get(pool: &Pool, id: &str) -> sqlx::Result<Option<Group>> {
    fetch_one(pool, "SELECT * FROM groups WHERE id = $1", id, group).await
}

pub async fn list(
    pool: &Pool,
    name: Option<&str>,
    domain_id: Option<&str>,
    member_id: Option<&str>,
) -> sqlx::Result<Vec<Group>> {
    let mut sql = Sql::new("SELECT * FROM groups");
    sql.and_eq_opt("name", name)
        .and_eq_opt("domain_id", domain_id);
    if let Some(member_id) = member_id {
        sql.and(
            "id IN (SELECT group_id FROM user_groups WHERE user_id = {})",
            member_id,
        );
    }
    sql.push(" ORDER BY name");
    fetch_all(pool, &sql, group).await
}

pub async fn insert(pool: &Pool, g: &Group) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO groups (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.domain_id)
    .bind(&g.description)
    .bind(extra_json(&g.extra))
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn update(pool: &Pool, g: &Group) -> sqlx::Result<()> {
    sqlx::query("UPDATE groups SET name = $2, description = $3, extra = $4 WHERE id = $1")
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(extra_json(&g.extra))
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete(pool: &Pool, id: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM assignments WHERE actor_type = 'group' AND actor_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM groups WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

pub async fn is_member(pool: &Pool, group_id: &str, user_id: &str) -> sqlx::Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM user_groups WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
            .is_some(),
    )
}

pub async fn add_member(pool: &Pool, group_id: &str, user_id: &str) -> sqlx::Result<()> {
    if !is_member(pool, group_id, user_id).await? {
        sqlx::query("INSERT INTO user_groups (user_id, group_id) VALUES ($1, $2)")
            .bind(user_id)
            .bind(group_id)
            .execute(pool)
            .await?;
    }
    Ok(())
}

pub async fn remove_member(pool: &Pool, group_id: &str, user_id: &str) -> sqlx::Result<bool> {
    let done = sqlx::query("DELETE FROM user_groups WHERE group_id = $1 AND user_id = $2")
        .bind(group_id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn member_ids(pool: &Pool, group_id: &str) -> sqlx::Result<Vec<String>> {
    let rows = sqlx::query("SELECT user_id FROM user_groups WHERE group_id = $1")
        .bind(group_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| text(r, "user_id")).collect()
}
