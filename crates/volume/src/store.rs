//! SQL for block storage: JSON documents next to the columns queries select on, volumes
//! written compare-and-set on their revision (the API and the agent both write them).

use onestack_db::{Any, Pool, RowExt, Tx};
use serde::de::DeserializeOwned;
use sqlx::Executor;

use crate::error::Result;
use crate::model::{
    Backup, BackupStatus, Snapshot, SnapshotStatus, Transfer, Versioned, Volume, VolumeStatus,
    VolumeType,
};

fn decode<T: DeserializeOwned>(row: &onestack_db::Row) -> Result<T> {
    Ok(onestack_db::decode(&row.try_get::<String, _>("doc")?)?)
}

fn versioned(row: &onestack_db::Row) -> Result<Versioned<Volume>> {
    Ok(Versioned {
        doc: decode(row)?,
        revision: row.try_get("revision")?,
    })
}

/// A transaction that holds the write lock from its first statement, so the usage a quota
/// check reads is not overtaken by another writer before it inserts.
pub async fn begin_write(pool: &Pool) -> Result<Tx> {
    Ok(onestack_db::begin_write(pool).await?)
}

// ---- volume types ----

/// Inserts a type; `false` when its name is taken.
pub async fn insert_type(tx: &mut Tx, t: &VolumeType) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO vol_types (id, name, is_public, created_at, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(t.id.clone())
    .bind(t.name.clone())
    .bind(i64::from(t.is_public))
    .bind(t.created_at)
    .bind(onestack_db::encode(t)?)
    .execute(&mut **tx)
    .await;
    match done {
        Ok(_) => Ok(true),
        Err(e) if onestack_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Writes a changed type; `false` when its new name is taken.
pub async fn update_type(tx: &mut Tx, t: &VolumeType) -> Result<bool> {
    let done =
        sqlx::query("UPDATE vol_types SET name = $1, is_public = $2, doc = $3 WHERE id = $4")
            .bind(t.name.clone())
            .bind(i64::from(t.is_public))
            .bind(onestack_db::encode(t)?)
            .bind(t.id.clone())
            .execute(&mut **tx)
            .await;
    match done {
        Ok(_) => Ok(true),
        Err(e) if onestack_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// How a type is looked up: both are unique.
#[derive(Debug, Clone, Copy)]
pub enum TypeKey {
    Id,
    Name,
}

pub async fn volume_type<'c, E: Executor<'c, Database = Any>>(
    e: E,
    key: TypeKey,
    value: &str,
) -> Result<Option<VolumeType>> {
    let sql = match key {
        TypeKey::Id => "SELECT doc FROM vol_types WHERE id = $1",
        TypeKey::Name => "SELECT doc FROM vol_types WHERE name = $1",
    };
    let row = sqlx::query(sql)
        .bind(value.to_owned())
        .fetch_optional(e)
        .await?;
    row.as_ref().map(decode).transpose()
}

pub async fn volume_types(pool: &Pool) -> Result<Vec<VolumeType>> {
    let rows = sqlx::query("SELECT doc FROM vol_types ORDER BY created_at, id")
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode).collect()
}

/// Deletes a type no volume uses; `false` when volumes still use it (or it is gone).
pub async fn delete_unused_type(tx: &mut Tx, id: &str) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM vol_types WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM vol_volumes WHERE volume_type_id = $1)",
    )
    .bind(id.to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

// ---- volumes ----

pub async fn insert_volume(tx: &mut Tx, v: &Volume) -> Result<()> {
    sqlx::query(
        "INSERT INTO vol_volumes (id, project_id, status, host, volume_type_id, size_gb, created_at, revision, doc, source_snapshot) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9)",
    )
    .bind(v.id.clone())
    .bind(v.project_id.clone())
    .bind(v.status.as_str())
    .bind(v.host.clone())
    .bind(v.volume_type_id.clone())
    .bind(size_column(v))
    .bind(v.created_at)
    .bind(onestack_db::encode(v)?)
    .bind(v.source.snapshot().unwrap_or_default().to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The GiB a volume holds against its quota: while it grows, the size it grows to.
/// (Sizes are checked against quotas far below `i64::MAX` GiB before they get here.)
fn size_column(v: &Volume) -> i64 {
    i64::try_from(v.size.max(v.extend_to.unwrap_or(0))).unwrap_or(i64::MAX)
}

pub async fn volume<'c, E: Executor<'c, Database = Any>>(
    e: E,
    id: &str,
) -> Result<Option<Versioned<Volume>>> {
    let row = sqlx::query("SELECT doc, revision FROM vol_volumes WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(e)
        .await?;
    row.as_ref().map(versioned).transpose()
}

/// Every volume of `project` (every volume for `None`), oldest first.
pub async fn volumes(pool: &Pool, project: Option<&str>) -> Result<Vec<Volume>> {
    let rows = match project {
        Some(p) => {
            sqlx::query("SELECT doc FROM vol_volumes WHERE project_id = $1 ORDER BY created_at, id")
                .bind(p.to_owned())
                .fetch_all(pool)
                .await?
        }
        None => {
            sqlx::query("SELECT doc FROM vol_volumes ORDER BY created_at, id")
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(decode).collect()
}

/// The volumes in `status` (anywhere).
pub async fn volumes_in_status<'c, E: Executor<'c, Database = Any>>(
    e: E,
    status: VolumeStatus,
) -> Result<Vec<Versioned<Volume>>> {
    let rows = sqlx::query("SELECT doc, revision FROM vol_volumes WHERE status = $1")
        .bind(status.as_str())
        .fetch_all(e)
        .await?;
    rows.iter().map(versioned).collect()
}

/// The volumes on `host` whose status asks the agent for work.
/// (volumes, GiB) this host's backend holds: what Cinder reports as its pool's
/// `allocated_capacity_gb`.
pub async fn allocated(pool: &Pool, host: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size_gb), 0) AS BIGINT) AS gb FROM vol_volumes WHERE host = $1",
    )
    .bind(host.to_owned())
    .fetch_one(pool)
    .await?;
    Ok((row.try_get("n")?, row.try_get("gb")?))
}

pub async fn pending(pool: &Pool, host: &str) -> Result<Vec<Versioned<Volume>>> {
    let [a, b, c, d] = VolumeStatus::PENDING;
    let rows = sqlx::query(
        "SELECT doc, revision FROM vol_volumes WHERE host = $1 AND status IN ($2, $3, $4, $5) ORDER BY created_at",
    )
    .bind(host.to_owned())
    .bind(a.as_str())
    .bind(b.as_str())
    .bind(c.as_str())
    .bind(d.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(versioned).collect()
}

/// Writes `v` if its row is still at `revision`; `false` when someone wrote it meanwhile.
pub async fn update_volume<'c, E: Executor<'c, Database = Any>>(
    e: E,
    v: &Volume,
    revision: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE vol_volumes SET project_id = $1, status = $2, host = $3, volume_type_id = $4, size_gb = $5, \
         revision = revision + 1, doc = $6 WHERE id = $7 AND revision = $8",
    )
    .bind(v.project_id.clone())
    .bind(v.status.as_str())
    .bind(v.host.clone())
    .bind(v.volume_type_id.clone())
    .bind(size_column(v))
    .bind(onestack_db::encode(v)?)
    .bind(v.id.clone())
    .bind(revision)
    .execute(e)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes a volume's row if it is still at `revision`.
pub async fn delete_volume(pool: &Pool, id: &str, revision: i64) -> Result<bool> {
    let done = sqlx::query("DELETE FROM vol_volumes WHERE id = $1 AND revision = $2")
        .bind(id.to_owned())
        .bind(revision)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// What `project` holds: volumes, snapshots and the GiB of both (Cinder counts a
/// snapshot's size against `gigabytes` too).
pub async fn usage(tx: &mut Tx, project: &str) -> Result<Usage> {
    usage_on(tx, project).await
}

/// [`usage`] on any connection (both counts on the same one).
pub async fn usage_on(conn: &mut sqlx::AnyConnection, project: &str) -> Result<Usage> {
    let count = |table: &str| {
        format!(
            "SELECT count(*) AS n, CAST(coalesce(sum(size_gb), 0) AS BIGINT) AS gb FROM {table} WHERE project_id = $1"
        )
    };
    let volumes = sqlx::query(sqlx::AssertSqlSafe(count("vol_volumes")))
        .bind(project.to_owned())
        .fetch_one(&mut *conn)
        .await?;
    let snapshots = sqlx::query(sqlx::AssertSqlSafe(count("vol_snapshots")))
        .bind(project.to_owned())
        .fetch_one(&mut *conn)
        .await?;
    let backups = sqlx::query(sqlx::AssertSqlSafe(count("vol_backups")))
        .bind(project.to_owned())
        .fetch_one(&mut *conn)
        .await?;
    let volume_gb: i64 = volumes.try_get("gb")?;
    let snapshot_gb: i64 = snapshots.try_get("gb")?;
    Ok(Usage {
        volumes: volumes.try_get("n")?,
        snapshots: snapshots.try_get("n")?,
        gigabytes: volume_gb.saturating_add(snapshot_gb),
        backups: backups.try_get("n")?,
        backup_gigabytes: backups.try_get("gb")?,
    })
}

/// A project's holdings, as the quotas count them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub volumes: i64,
    pub snapshots: i64,
    pub gigabytes: i64,
    pub backups: i64,
    pub backup_gigabytes: i64,
}

// ---- snapshots ----

fn versioned_snapshot(row: &onestack_db::Row) -> Result<Versioned<Snapshot>> {
    Ok(Versioned {
        doc: decode(row)?,
        revision: row.try_get("revision")?,
    })
}

pub async fn insert_snapshot(tx: &mut Tx, s: &Snapshot) -> Result<()> {
    sqlx::query(
        "INSERT INTO vol_snapshots (id, project_id, volume_id, status, host, size_gb, created_at, revision, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)",
    )
    .bind(s.id.clone())
    .bind(s.project_id.clone())
    .bind(s.volume_id.clone())
    .bind(s.status.as_str())
    .bind(s.host.clone())
    .bind(i64::try_from(s.size).unwrap_or(i64::MAX))
    .bind(s.created_at)
    .bind(onestack_db::encode(s)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn snapshot<'c, E: Executor<'c, Database = Any>>(
    e: E,
    id: &str,
) -> Result<Option<Versioned<Snapshot>>> {
    let row = sqlx::query("SELECT doc, revision FROM vol_snapshots WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(e)
        .await?;
    row.as_ref().map(versioned_snapshot).transpose()
}

/// Every snapshot of `project` (every one for `None`), oldest first.
pub async fn snapshots(pool: &Pool, project: Option<&str>) -> Result<Vec<Snapshot>> {
    let rows = match project {
        Some(p) => {
            sqlx::query(
                "SELECT doc FROM vol_snapshots WHERE project_id = $1 ORDER BY created_at, id",
            )
            .bind(p.to_owned())
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query("SELECT doc FROM vol_snapshots ORDER BY created_at, id")
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(decode).collect()
}

/// The snapshots of `volume`.
pub async fn snapshots_of_volume<'c, E: Executor<'c, Database = Any>>(
    e: E,
    volume: &str,
) -> Result<Vec<Versioned<Snapshot>>> {
    let rows = sqlx::query("SELECT doc, revision FROM vol_snapshots WHERE volume_id = $1")
        .bind(volume.to_owned())
        .fetch_all(e)
        .await?;
    rows.iter().map(versioned_snapshot).collect()
}

/// The volumes whose files are overlays on `snapshot`'s.
pub async fn volumes_on_snapshot<'c, E: Executor<'c, Database = Any>>(
    e: E,
    snapshot: &str,
) -> Result<Vec<Versioned<Volume>>> {
    let rows = sqlx::query("SELECT doc, revision FROM vol_volumes WHERE source_snapshot = $1")
        .bind(snapshot.to_owned())
        .fetch_all(e)
        .await?;
    rows.iter().map(versioned).collect()
}

/// The snapshots on `host` whose status asks the agent for work.
pub async fn pending_snapshots(pool: &Pool, host: &str) -> Result<Vec<Versioned<Snapshot>>> {
    let [a, b] = SnapshotStatus::PENDING;
    let rows = sqlx::query(
        "SELECT doc, revision FROM vol_snapshots WHERE host = $1 AND status IN ($2, $3) ORDER BY created_at",
    )
    .bind(host.to_owned())
    .bind(a.as_str())
    .bind(b.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(versioned_snapshot).collect()
}

/// Writes `s` if its row is still at `revision`.
pub async fn update_snapshot<'c, E: Executor<'c, Database = Any>>(
    e: E,
    s: &Snapshot,
    revision: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE vol_snapshots SET project_id = $1, status = $2, revision = revision + 1, doc = $3 WHERE id = $4 AND revision = $5",
    )
    .bind(s.project_id.clone())
    .bind(s.status.as_str())
    .bind(onestack_db::encode(s)?)
    .bind(s.id.clone())
    .bind(revision)
    .execute(e)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes a snapshot's row if it is still at `revision`.
pub async fn delete_snapshot(pool: &Pool, id: &str, revision: i64) -> Result<bool> {
    let done = sqlx::query("DELETE FROM vol_snapshots WHERE id = $1 AND revision = $2")
        .bind(id.to_owned())
        .bind(revision)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

// ---- backups ----

fn versioned_backup(row: &onestack_db::Row) -> Result<Versioned<Backup>> {
    Ok(Versioned {
        doc: decode(row)?,
        revision: row.try_get("revision")?,
    })
}

pub async fn insert_backup(tx: &mut Tx, b: &Backup) -> Result<()> {
    sqlx::query(
        "INSERT INTO vol_backups (id, project_id, volume_id, parent_id, status, host, size_gb, created_at, revision, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9)",
    )
    .bind(b.id.clone())
    .bind(b.project_id.clone())
    .bind(b.volume_id.clone())
    .bind(b.parent_id.clone().unwrap_or_default())
    .bind(b.status.as_str())
    .bind(b.host.clone())
    .bind(i64::try_from(b.size).unwrap_or(i64::MAX))
    .bind(b.created_at)
    .bind(onestack_db::encode(b)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn backup<'c, E: Executor<'c, Database = Any>>(
    e: E,
    id: &str,
) -> Result<Option<Versioned<Backup>>> {
    let row = sqlx::query("SELECT doc, revision FROM vol_backups WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(e)
        .await?;
    row.as_ref().map(versioned_backup).transpose()
}

/// Every backup of `project` (every one for `None`), oldest first.
pub async fn backups(pool: &Pool, project: Option<&str>) -> Result<Vec<Backup>> {
    let rows = match project {
        Some(p) => {
            sqlx::query("SELECT doc FROM vol_backups WHERE project_id = $1 ORDER BY created_at, id")
                .bind(p.to_owned())
                .fetch_all(pool)
                .await?
        }
        None => {
            sqlx::query("SELECT doc FROM vol_backups ORDER BY created_at, id")
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(decode).collect()
}

/// The backups of `volume`, oldest first.
pub async fn backups_of_volume<'c, E: Executor<'c, Database = Any>>(
    e: E,
    volume: &str,
) -> Result<Vec<Backup>> {
    let rows =
        sqlx::query("SELECT doc FROM vol_backups WHERE volume_id = $1 ORDER BY created_at, id")
            .bind(volume.to_owned())
            .fetch_all(e)
            .await?;
    rows.iter().map(decode).collect()
}

/// The ids of the backups whose parent is `parent` (incremental backups on it).
pub async fn children_of_backup<'c, E: Executor<'c, Database = Any>>(
    e: E,
    parent: &str,
) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM vol_backups WHERE parent_id = $1")
        .bind(parent.to_owned())
        .fetch_all(e)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("id").map_err(Into::into))
        .collect()
}

/// The backups on `host` whose status asks the agent for work.
pub async fn pending_backups(pool: &Pool, host: &str) -> Result<Vec<Versioned<Backup>>> {
    let [a, b, c] = BackupStatus::PENDING;
    let rows = sqlx::query(
        "SELECT doc, revision FROM vol_backups WHERE host = $1 AND status IN ($2, $3, $4) ORDER BY created_at",
    )
    .bind(host.to_owned())
    .bind(a.as_str())
    .bind(b.as_str())
    .bind(c.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(versioned_backup).collect()
}

/// Writes `b` if its row is still at `revision`.
pub async fn update_backup<'c, E: Executor<'c, Database = Any>>(
    e: E,
    b: &Backup,
    revision: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE vol_backups SET status = $1, revision = revision + 1, doc = $2 WHERE id = $3 AND revision = $4",
    )
    .bind(b.status.as_str())
    .bind(onestack_db::encode(b)?)
    .bind(b.id.clone())
    .bind(revision)
    .execute(e)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes a backup's row if it is still at `revision`.
pub async fn delete_backup<'c, E: Executor<'c, Database = Any>>(
    e: E,
    id: &str,
    revision: i64,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM vol_backups WHERE id = $1 AND revision = $2")
        .bind(id.to_owned())
        .bind(revision)
        .execute(e)
        .await?;
    Ok(done.rows_affected() > 0)
}

// ---- transfers ----

pub async fn insert_transfer(tx: &mut Tx, t: &Transfer) -> Result<()> {
    sqlx::query(
        "INSERT INTO vol_transfers (id, project_id, volume_id, created_at, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(t.id.clone())
    .bind(t.project_id.clone())
    .bind(t.volume_id.clone())
    .bind(t.created_at)
    .bind(onestack_db::encode(t)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn transfer<'c, E: Executor<'c, Database = Any>>(
    e: E,
    id: &str,
) -> Result<Option<Transfer>> {
    let row = sqlx::query("SELECT doc FROM vol_transfers WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(e)
        .await?;
    row.as_ref().map(decode).transpose()
}

/// Every transfer of `project` (every one for `None`), oldest first.
pub async fn transfers(pool: &Pool, project: Option<&str>) -> Result<Vec<Transfer>> {
    let rows = match project {
        Some(p) => {
            sqlx::query(
                "SELECT doc FROM vol_transfers WHERE project_id = $1 ORDER BY created_at, id",
            )
            .bind(p.to_owned())
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query("SELECT doc FROM vol_transfers ORDER BY created_at, id")
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(decode).collect()
}

pub async fn delete_transfer(tx: &mut Tx, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM vol_transfers WHERE id = $1")
        .bind(id.to_owned())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

// ---- quotas ----

/// Cinder's per-project limits (the defaults are the configuration's).
pub const QUOTAS: onestack_db::QuotaTable = onestack_db::QuotaTable("vol_quotas");
