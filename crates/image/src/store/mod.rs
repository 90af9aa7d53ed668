//! SQL for images, tags and members; the list's query is `list.rs`'s.

mod list;

pub use list::list;

use onestack_db::{Pool, Row, RowExt, Sql};
use serde_json::Value;

use crate::model::{Image, Member, Status};

fn text(row: &Row, c: &str) -> sqlx::Result<String> {
    row.try_get(c)
}
fn opt_text(row: &Row, c: &str) -> sqlx::Result<Option<String>> {
    row.try_get(c)
}

fn image(row: &Row) -> sqlx::Result<Image> {
    let properties = match serde_json::from_str(&text(row, "properties")?) {
        Ok(Value::Object(map)) => map,
        _ => Default::default(),
    };
    Ok(Image {
        id: text(row, "id")?,
        name: opt_text(row, "name")?,
        status: Status::parse(&text(row, "status")?).unwrap_or(Status::Killed),
        visibility: text(row, "visibility")?,
        protected: row.try_get::<i64, _>("protected")? != 0,
        os_hidden: row.try_get::<i64, _>("os_hidden")? != 0,
        checksum: opt_text(row, "checksum")?,
        os_hash_algo: opt_text(row, "os_hash_algo")?,
        os_hash_value: opt_text(row, "os_hash_value")?,
        owner: text(row, "owner")?,
        size: row.try_get("size")?,
        virtual_size: row.try_get("virtual_size")?,
        min_disk: row.try_get("min_disk")?,
        min_ram: row.try_get("min_ram")?,
        container_format: opt_text(row, "container_format")?,
        disk_format: opt_text(row, "disk_format")?,
        properties,
        tags: Vec::new(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn with_tags(pool: &Pool, mut images: Vec<Image>) -> sqlx::Result<Vec<Image>> {
    if images.is_empty() {
        return Ok(images);
    }
    let mut sql = Sql::new("SELECT image_id, tag FROM image_tags WHERE image_id IN (");
    for (i, img) in images.iter().enumerate() {
        let p = sql.bind(img.id.as_str());
        sql.push(if i == 0 { "" } else { ", " }).push(&p);
    }
    sql.push(") ORDER BY tag");
    for row in sql.query().fetch_all(pool).await? {
        let id = text(&row, "image_id")?;
        if let Some(img) = images.iter_mut().find(|i| i.id == id) {
            img.tags.push(text(&row, "tag")?);
        }
    }
    Ok(images)
}

pub async fn get(pool: &Pool, id: &str) -> sqlx::Result<Option<Image>> {
    let row = sqlx::query("SELECT * FROM images WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(row) => Ok(with_tags(pool, vec![image(&row)?]).await?.pop()),
        None => Ok(None),
    }
}

/// Binds the 19 columns of an image in table order ($1 = id ... $19 = updated_at).
fn bind_image<'q>(
    query: sqlx::query::Query<'q, onestack_db::Any, sqlx::any::AnyArguments>,
    i: &Image,
) -> sqlx::query::Query<'q, onestack_db::Any, sqlx::any::AnyArguments> {
    query
        .bind(i.id.clone())
        .bind(i.name.clone())
        .bind(i.status.as_str())
        .bind(i.visibility.clone())
        .bind(i64::from(i.protected))
        .bind(i64::from(i.os_hidden))
        .bind(i.checksum.clone())
        .bind(i.os_hash_algo.clone())
        .bind(i.os_hash_value.clone())
        .bind(i.owner.clone())
        .bind(i.size)
        .bind(i.virtual_size)
        .bind(i.min_disk)
        .bind(i.min_ram)
        .bind(i.container_format.clone())
        .bind(i.disk_format.clone())
        .bind(Value::Object(i.properties.clone()).to_string())
        .bind(i.created_at)
        .bind(i.updated_at)
}

async fn write_tags(
    tx: &mut onestack_db::Transaction<'_, onestack_db::Any>,
    i: &Image,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
        .bind(&i.id)
        .execute(&mut **tx)
        .await?;
    for tag in &i.tags {
        sqlx::query("INSERT INTO image_tags (image_id, tag) VALUES ($1, $2)")
            .bind(&i.id)
            .bind(tag)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// What [`insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Done,
    /// The id belongs to a live image or to a deleted one.
    IdTaken,
    /// The owner already has as many images as the count limit allows.
    OverQuota,
}

/// Records a new image under the write lock, so that creates running side by side can never
/// pass `count_limit` together; nothing is written unless it returns `Done`.
pub async fn insert(pool: &Pool, i: &Image, count_limit: Option<u64>) -> sqlx::Result<Inserted> {
    let mut tx = onestack_db::begin_write(pool).await?;
    let taken = sqlx::query(
        "SELECT 1 AS taken FROM images WHERE id = $1 UNION ALL SELECT 1 FROM image_tombstones WHERE id = $1",
    )
    .bind(&i.id)
    .fetch_optional(&mut *tx)
    .await?;
    if taken.is_some() {
        return Ok(Inserted::IdTaken);
    }
    if let Some(limit) = count_limit {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM images WHERE owner = $1")
            .bind(&i.owner)
            .fetch_one(&mut *tx)
            .await?;
        let owned = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
        if owned >= limit {
            return Ok(Inserted::OverQuota);
        }
    }
    let insert = sqlx::query(
        "INSERT INTO images (id, name, status, visibility, protected, os_hidden, checksum, os_hash_algo, \
         os_hash_value, owner, size, virtual_size, min_disk, min_ram, container_format, disk_format, properties, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    );
    bind_image(insert, i).execute(&mut *tx).await?;
    write_tags(&mut tx, i).await?;
    tx.commit().await?;
    Ok(Inserted::Done)
}

/// Writes every attribute and the tags of an image (created_at stays as it was created).
/// Writes `i` over the row read as `read`, only if nothing else wrote that row meanwhile
/// (its status and `updated_at` unchanged: every write sets `updated_at`). `false` when
/// another write came first, so a caller never puts back what an upload just changed.
pub async fn update(pool: &Pool, i: &Image, read: &Image) -> sqlx::Result<bool> {
    let mut tx = onestack_db::begin_write(pool).await?;
    let current = sqlx::query("SELECT status, updated_at FROM images WHERE id = $1")
        .bind(&i.id)
        .fetch_optional(&mut *tx)
        .await?;
    let unchanged = match current {
        Some(row) => {
            let status: String = row.try_get("status")?;
            let updated_at: i64 = row.try_get("updated_at")?;
            status == read.status.as_str() && updated_at == read.updated_at
        }
        None => false,
    };
    if !unchanged {
        return Ok(false);
    }
    update_in(&mut tx, i).await?;
    tx.commit().await?;
    Ok(true)
}

async fn update_in(
    tx: &mut onestack_db::Transaction<'_, onestack_db::Any>,
    i: &Image,
) -> sqlx::Result<()> {
    let update = sqlx::query(
        "UPDATE images SET name = $2, status = $3, visibility = $4, protected = $5, os_hidden = $6, checksum = $7, \
         os_hash_algo = $8, os_hash_value = $9, owner = $10, size = $11, virtual_size = $12, min_disk = $13, \
         min_ram = $14, container_format = $15, disk_format = $16, properties = $17, created_at = $18, \
         updated_at = $19 WHERE id = $1",
    );
    bind_image(update, i).execute(&mut **tx).await?;
    write_tags(tx, i).await
}

/// What [`save_data`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Done,
    /// The image was deleted while its data arrived.
    Gone,
    /// With its size the owner's images would pass the limit.
    OverQuota,
}

/// Writes an image that now has data (its `size` set), under the write lock and only if the
/// owner's images, this one at its new size, stay within `limit` bytes.
pub async fn save_data(pool: &Pool, i: &Image, limit: Option<u64>) -> sqlx::Result<Saved> {
    let mut tx = onestack_db::begin_write(pool).await?;
    let exists = sqlx::query("SELECT 1 AS present FROM images WHERE id = $1")
        .bind(&i.id)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Ok(Saved::Gone);
    }
    if let Some(limit) = limit {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM images WHERE owner = $1 AND id <> $2",
        )
        .bind(&i.owner)
        .bind(&i.id)
        .fetch_one(&mut *tx)
        .await?;
        let others = u64::try_from(row.try_get::<i64, _>("bytes")?).unwrap_or(0);
        let own = i.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        if others.saturating_add(own) > limit {
            return Ok(Saved::OverQuota);
        }
    }
    update_in(&mut tx, i).await?;
    tx.commit().await?;
    Ok(Saved::Done)
}

/// Moves an image from one status to another only if it is still in `from` (so two
/// concurrent uploads cannot both start). Returns whether it moved.
pub async fn transition(
    pool: &Pool,
    id: &str,
    from: &[Status],
    to: Status,
    now: i64,
) -> sqlx::Result<bool> {
    let mut sql = Sql::new("UPDATE images SET status = $1, updated_at = $2 WHERE id = $3");
    sql.bind(to.as_str());
    sql.bind(now);
    sql.bind(id);
    sql.push(" AND status IN (");
    for (i, s) in from.iter().enumerate() {
        let p = sql.bind(s.as_str());
        sql.push(if i == 0 { "" } else { ", " }).push(&p);
    }
    sql.push(")");
    Ok(sql.query().execute(pool).await?.rows_affected() == 1)
}

/// Deletes image `id` and keeps its id as taken (a tombstone), in one transaction; `false`
/// if it was already gone (another delete got there first).
pub async fn delete(pool: &Pool, id: &str, now: i64) -> sqlx::Result<bool> {
    let mut tx = onestack_db::begin_write(pool).await?;
    sqlx::query(
        "INSERT INTO image_tombstones (id, owner, deleted_at) SELECT id, owner, $2 FROM images WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let deleted = sqlx::query("DELETE FROM images WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    tx.commit().await?;
    Ok(deleted)
}

/// Marks images whose upload a crash interrupted.
pub async fn kill_interrupted(pool: &Pool, now: i64) -> sqlx::Result<u64> {
    Ok(sqlx::query("UPDATE images SET status = 'killed', updated_at = $1 WHERE status IN ('saving', 'importing')")
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected())
}

/// Total bytes and image count a project owns (for quotas).
pub async fn usage(pool: &Pool, owner: &str) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM images WHERE owner = $1",
    )
    .bind(owner)
    .fetch_one(pool)
    .await?;
    Ok((row.try_get("bytes")?, row.try_get("n")?))
}

fn member(row: &Row) -> sqlx::Result<Member> {
    Ok(Member {
        image_id: text(row, "image_id")?,
        member_id: text(row, "member_id")?,
        status: text(row, "status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn members(pool: &Pool, image_id: &str) -> sqlx::Result<Vec<Member>> {
    let rows = sqlx::query("SELECT * FROM image_members WHERE image_id = $1 ORDER BY created_at")
        .bind(image_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(member).collect()
}

pub async fn get_member(
    pool: &Pool,
    image_id: &str,
    member_id: &str,
) -> sqlx::Result<Option<Member>> {
    let row = sqlx::query("SELECT * FROM image_members WHERE image_id = $1 AND member_id = $2")
        .bind(image_id)
        .bind(member_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(member).transpose()
}

pub async fn insert_member(pool: &Pool, m: &Member) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO image_members (image_id, member_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&m.image_id)
        .bind(&m.member_id)
        .bind(&m.status)
        .bind(m.created_at)
        .bind(m.updated_at)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn update_member(pool: &Pool, m: &Member) -> sqlx::Result<()> {
    sqlx::query("UPDATE image_members SET status = $3, updated_at = $4 WHERE image_id = $1 AND member_id = $2")
        .bind(&m.image_id)
        .bind(&m.member_id)
        .bind(&m.status)
        .bind(m.updated_at)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete_member(pool: &Pool, image_id: &str, member_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member_id = $2")
        .bind(image_id)
        .bind(member_id)
        .execute(pool)
        .await?;
    Ok(())
}
