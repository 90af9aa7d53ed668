//! SQL for the compute service: JSON documents next to the columns queries select on.

use onestack_db::{Any, Pool, RowExt, Sql, Tx};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Executor;

use crate::error::Result;
use crate::model::{Aggregate, Flavor, Host, InstanceAction, Keypair, Server, ServerGroup};

fn decode<T: DeserializeOwned>(doc: &str) -> Result<T> {
    Ok(onestack_db::decode(doc)?)
}

fn encode<T: Serialize>(doc: &T) -> Result<String> {
    Ok(onestack_db::encode(doc)?)
}

fn docs<T: DeserializeOwned>(rows: &[onestack_db::Row]) -> Result<Vec<T>> {
    rows.iter()
        .map(|r| decode(&r.try_get::<String, _>("doc")?))
        .collect()
}

/// A transaction that holds the write lock from its first statement, so what it reads
/// (capacity, quota usage) is not overtaken by another writer before it writes.
pub async fn begin_write(pool: &Pool) -> Result<Tx> {
    Ok(onestack_db::begin_write(pool).await?)
}

// ---- flavors ----

pub async fn flavor<'c, E: Executor<'c, Database = Any>>(e: E, id: &str) -> Result<Option<Flavor>> {
    let row = sqlx::query("SELECT doc FROM cmp_flavors WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(e)
        .await?;
    row.map(|r| decode(&r.try_get::<String, _>("doc")?))
        .transpose()
}

pub async fn flavor_by_name(pool: &Pool, name: &str) -> Result<Option<Flavor>> {
    let row = sqlx::query("SELECT doc FROM cmp_flavors WHERE name = $1")
        .bind(name.to_owned())
        .fetch_optional(pool)
        .await?;
    row.map(|r| decode(&r.try_get::<String, _>("doc")?))
        .transpose()
}

pub async fn flavors(pool: &Pool) -> Result<Vec<Flavor>> {
    let rows = sqlx::query("SELECT doc FROM cmp_flavors ORDER BY created_at, id")
        .fetch_all(pool)
        .await?;
    docs(&rows)
}

pub async fn insert_flavor(pool: &Pool, f: &Flavor) -> Result<()> {
    sqlx::query(
        "INSERT INTO cmp_flavors (id, name, is_public, created_at, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(f.id.clone())
    .bind(f.name.clone())
    .bind(i64::from(f.is_public))
    .bind(f.created_at)
    .bind(encode(f)?)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn update_flavor(pool: &Pool, f: &Flavor) -> Result<()> {
    sqlx::query("UPDATE cmp_flavors SET doc = $1 WHERE id = $2")
        .bind(encode(f)?)
        .bind(f.id.clone())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete_flavor(pool: &Pool, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM cmp_flavors WHERE id = $1")
        .bind(id.to_owned())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn flavor_access(pool: &Pool, flavor_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT project_id FROM cmp_flavor_access WHERE flavor_id = $1 ORDER BY project_id",
    )
    .bind(flavor_id.to_owned())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("project_id"))
        .collect::<Result<_, _>>()?)
}

/// Ids of the private flavors `project_id` was given.
pub async fn flavors_of_project(pool: &Pool, project_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT flavor_id FROM cmp_flavor_access WHERE project_id = $1")
        .bind(project_id.to_owned())
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get("flavor_id"))
        .collect::<Result<_, _>>()?)
}

pub async fn set_flavor_access(
    pool: &Pool,
    flavor_id: &str,
    project_id: &str,
    on: bool,
) -> Result<bool> {
    let sql = if on {
        "INSERT INTO cmp_flavor_access (flavor_id, project_id) VALUES ($1, $2)"
    } else {
        "DELETE FROM cmp_flavor_access WHERE flavor_id = $1 AND project_id = $2"
    };
    match sqlx::query(sql)
        .bind(flavor_id.to_owned())
        .bind(project_id.to_owned())
        .execute(pool)
        .await
    {
        Ok(done) => Ok(done.rows_affected() > 0),
        Err(e) if onestack_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

// ---- keypairs ----

pub async fn keypair(pool: &Pool, user_id: &str, name: &str) -> Result<Option<Keypair>> {
    let row = sqlx::query("SELECT doc FROM cmp_keypairs WHERE user_id = $1 AND name = $2")
        .bind(user_id.to_owned())
        .bind(name.to_owned())
        .fetch_optional(pool)
        .await?;
    row.map(|r| decode(&r.try_get::<String, _>("doc")?))
        .transpose()
}

pub async fn keypairs(pool: &Pool, user_id: &str) -> Result<Vec<Keypair>> {
    let rows = sqlx::query("SELECT doc FROM cmp_keypairs WHERE user_id = $1 ORDER BY name")
        .bind(user_id.to_owned())
        .fetch_all(pool)
        .await?;
    docs(&rows)
}

pub async fn count_keypairs(tx: &mut Tx, user_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT count(*) AS n FROM cmp_keypairs WHERE user_id = $1")
        .bind(user_id.to_owned())
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get("n")?)
}

pub async fn next_keypair_id(tx: &mut Tx) -> Result<i64> {
    let row = sqlx::query("SELECT count(*) AS n FROM cmp_keypairs")
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get::<i64, _>("n")? + 1)
}

/// Inserts a keypair; `false` when the user already has one by that name.
pub async fn insert_keypair(tx: &mut Tx, k: &Keypair) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO cmp_keypairs (user_id, name, project_id, created_at, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(k.user_id.clone())
    .bind(k.name.clone())
    .bind(k.project_id.clone())
    .bind(k.created_at)
    .bind(encode(k)?)
    .execute(&mut **tx)
    .await;
    match done {
        Ok(_) => Ok(true),
        Err(e) if onestack_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_keypair(pool: &Pool, user_id: &str, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM cmp_keypairs WHERE user_id = $1 AND name = $2")
        .bind(user_id.to_owned())
        .bind(name.to_owned())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

// ---- servers ----

/// A server and the revision it was read at (for compare-and-set updates).
pub struct Versioned<T> {
    pub doc: T,
    pub revision: i64,
}

pub async fn server<'c, E: Executor<'c, Database = Any>>(
    e: E,
    id: &str,
) -> Result<Option<Versioned<Server>>> {
    let row = sqlx::query("SELECT doc, revision FROM cmp_servers WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(e)
        .await?;
    row.map(|r| {
        Ok(Versioned {
            doc: decode(&r.try_get::<String, _>("doc")?)?,
            revision: r.try_get("revision")?,
        })
    })
    .transpose()
}

/// Which servers a listing reads.
#[derive(Debug, Default)]
pub struct ServerFilter {
    pub project_id: Option<String>,
    pub host: Option<String>,
    /// The servers a host's agent tends: those on it and those migrating to or from it.
    pub kept_on: Option<String>,
    pub changes_since: Option<i64>,
    pub changes_before: Option<i64>,
}

pub async fn servers<'c, E: Executor<'c, Database = Any>>(
    e: E,
    filter: &ServerFilter,
) -> Result<Vec<Versioned<Server>>> {
    let mut sql = Sql::new("SELECT doc, revision FROM cmp_servers");
    if let Some(p) = &filter.project_id {
        sql.and("project_id = {}", p.as_str());
    }
    if let Some(h) = &filter.host {
        sql.and("host = {}", h.as_str());
    }
    if let Some(h) = &filter.kept_on {
        sql.and("(host = {} OR other_host = {})", h.as_str());
    }
    if let Some(t) = filter.changes_since {
        sql.and("updated_at >= {}", t);
    }
    if let Some(t) = filter.changes_before {
        sql.and("updated_at <= {}", t);
    }
    // Nova lists newest first.
    sql.push(" ORDER BY created_at DESC, id DESC");
    let rows = sql.query().fetch_all(e).await?;
    rows.iter()
        .map(|r| {
            Ok(Versioned {
                doc: decode(&r.try_get::<String, _>("doc")?)?,
                revision: r.try_get("revision")?,
            })
        })
        .collect()
}

/// The ids of every server there is.
pub async fn server_ids(pool: &Pool) -> Result<std::collections::HashSet<String>> {
    let rows = sqlx::query("SELECT id FROM cmp_servers")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("id")?))
        .collect()
}

pub async fn next_server_number(tx: &mut Tx) -> Result<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(number), 0) + 1 AS n FROM cmp_servers")
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get("n")?)
}

pub async fn insert_server(tx: &mut Tx, s: &Server, number: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO cmp_servers (id, number, project_id, user_id, host, vcpus, memory_mb, disk_gb, \
         created_at, updated_at, revision, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11)",
    )
    .bind(s.id.clone())
    .bind(number)
    .bind(s.project_id.clone())
    .bind(s.user_id.clone())
    .bind(s.host.clone().unwrap_or_default())
    .bind(i64::from(s.flavor.vcpus))
    .bind(s.flavor.ram as i64)
    .bind(s.local_disk_gb(&s.flavor) as i64)
    .bind(s.created_at)
    .bind(s.updated_at)
    .bind(encode(s)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The second host a migrating server holds room on ('' when none): the one it moves to
/// until it is placed there, then the one it left, until the move is settled. A revert
/// lets go of the new host at once (its agent then removes its copy).
fn other_host(s: &Server) -> String {
    match &s.migration {
        Some(_) if s.task_state == Some(crate::states::TaskState::ResizeReverting) => String::new(),
        Some(m) if s.host.as_deref() == Some(m.source.as_str()) => m.dest.clone(),
        Some(m) => m.source.clone(),
        None => String::new(),
    }
}

/// Writes `s` if it is still at `revision`; `false` when someone changed it meanwhile.
pub async fn update_server<'c, E: Executor<'c, Database = Any>>(
    e: E,
    s: &Server,
    revision: i64,
) -> Result<bool> {
    // Resources held are those of the larger flavor while a resize is unconfirmed.
    let held = match &s.old_flavor {
        Some(old) => (
            s.flavor.vcpus.max(old.vcpus),
            s.flavor.ram.max(old.ram),
            s.local_disk_gb(&s.flavor).max(s.local_disk_gb(old)),
        ),
        None => (s.flavor.vcpus, s.flavor.ram, s.local_disk_gb(&s.flavor)),
    };
    let done = sqlx::query(
        "UPDATE cmp_servers SET doc = $1, host = $2, vcpus = $3, memory_mb = $4, disk_gb = $5, \
         updated_at = $6, revision = revision + 1, other_host = $9 WHERE id = $7 AND revision = $8",
    )
    .bind(encode(s)?)
    .bind(s.host.clone().unwrap_or_default())
    .bind(i64::from(held.0))
    .bind(held.1 as i64)
    .bind(held.2 as i64)
    .bind(s.updated_at)
    .bind(s.id.clone())
    .bind(revision)
    .bind(other_host(s))
    .execute(e)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a server; its instance actions stay, readable since microversion 2.21.
pub async fn delete_server(pool: &Pool, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM cmp_servers WHERE id = $1")
        .bind(id.to_owned())
        .execute(pool)
        .await?;
    Ok(())
}

/// Resources a project's servers hold: (instances, cores, ram).
pub async fn project_usage(tx: &mut Tx, project_id: &str) -> Result<(i64, i64, i64)> {
    let row = sqlx::query(
        "SELECT count(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r \
         FROM cmp_servers WHERE project_id = $1",
    )
    .bind(project_id.to_owned())
    .fetch_one(&mut **tx)
    .await?;
    Ok((row.try_get("n")?, row.try_get("c")?, row.try_get("r")?))
}

/// Resources placed on each host: host → (servers, vcpus, memory_mb, disk_gb).
pub async fn host_usage<'c, E: Executor<'c, Database = Any>>(
    e: E,
) -> Result<std::collections::HashMap<String, (i64, i64, i64, i64)>> {
    // A migrating server holds room on its other host too (see `other_host`), without
    // counting as a guest running there.
    let rows = sqlx::query(
        "SELECT host, count(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r, \
         CAST(COALESCE(SUM(disk_gb), 0) AS BIGINT) AS d FROM cmp_servers WHERE host <> '' GROUP BY host \
         UNION ALL SELECT other_host AS host, CAST(0 AS BIGINT) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, \
         CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r, CAST(COALESCE(SUM(disk_gb), 0) AS BIGINT) AS d \
         FROM cmp_servers WHERE other_host <> '' GROUP BY other_host",
    )
    .fetch_all(e)
    .await?;
    let mut usage = std::collections::HashMap::new();
    for r in &rows {
        let held: (i64, i64, i64, i64) = (
            r.try_get("n")?,
            r.try_get("c")?,
            r.try_get("r")?,
            r.try_get("d")?,
        );
        let total: &mut (i64, i64, i64, i64) = usage.entry(r.try_get("host")?).or_default();
        *total = (
            total.0 + held.0,
            total.1 + held.1,
            total.2 + held.2,
            total.3 + held.3,
        );
    }
    Ok(usage)
}

// ---- aggregates ----

pub async fn aggregates<'c, E: Executor<'c, Database = Any>>(e: E) -> Result<Vec<Aggregate>> {
    let rows = sqlx::query("SELECT doc FROM cmp_aggregates ORDER BY id")
        .fetch_all(e)
        .await?;
    docs(&rows)
}

/// The id the next aggregate gets (under the write lock).
pub async fn next_aggregate_id(tx: &mut Tx) -> Result<i64> {
    let row =
        sqlx::query("SELECT CAST(COALESCE(MAX(id), 0) + 1 AS BIGINT) AS n FROM cmp_aggregates")
            .fetch_one(&mut **tx)
            .await?;
    Ok(row.try_get("n")?)
}

pub async fn save_aggregate<'c, E: Executor<'c, Database = Any>>(
    e: E,
    a: &Aggregate,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cmp_aggregates (id, name, doc) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
    )
    .bind(a.id)
    .bind(a.name.clone())
    .bind(encode(a)?)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn delete_aggregate<'c, E: Executor<'c, Database = Any>>(e: E, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM cmp_aggregates WHERE id = $1")
        .bind(id)
        .execute(e)
        .await?;
    Ok(())
}

// ---- server groups ----

pub async fn group<'c, E: Executor<'c, Database = Any>>(
    e: E,
    id: &str,
) -> Result<Option<ServerGroup>> {
    let row = sqlx::query("SELECT doc FROM cmp_server_groups WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(e)
        .await?;
    row.map(|r| decode(&r.try_get::<String, _>("doc")?))
        .transpose()
}

pub async fn groups(pool: &Pool, project_id: Option<&str>) -> Result<Vec<ServerGroup>> {
    let mut sql = Sql::new("SELECT doc FROM cmp_server_groups");
    if let Some(p) = project_id {
        sql.and("project_id = {}", p);
    }
    sql.push(" ORDER BY id");
    let rows = sql.query().fetch_all(pool).await?;
    docs(&rows)
}

pub async fn count_groups(tx: &mut Tx, project_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT count(*) AS n FROM cmp_server_groups WHERE project_id = $1")
        .bind(project_id.to_owned())
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get("n")?)
}

pub async fn save_group<'c, E: Executor<'c, Database = Any>>(e: E, g: &ServerGroup) -> Result<()> {
    sqlx::query(
        "INSERT INTO cmp_server_groups (id, project_id, doc) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
    )
    .bind(g.id.clone())
    .bind(g.project_id.clone())
    .bind(encode(g)?)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn delete_group(pool: &Pool, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM cmp_server_groups WHERE id = $1")
        .bind(id.to_owned())
        .execute(pool)
        .await?;
    Ok(())
}

// ---- instance actions ----

pub async fn save_action<'c, E: Executor<'c, Database = Any>>(
    e: E,
    a: &InstanceAction,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cmp_actions (server_id, request_id, start_time, doc) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (server_id, request_id) DO UPDATE SET doc = excluded.doc",
    )
    .bind(a.server_id.clone())
    .bind(a.request_id.clone())
    .bind(a.start_time)
    .bind(encode(a)?)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn actions(pool: &Pool, server_id: &str) -> Result<Vec<InstanceAction>> {
    let rows = sqlx::query(
        "SELECT doc FROM cmp_actions WHERE server_id = $1 ORDER BY start_time DESC, request_id",
    )
    .bind(server_id.to_owned())
    .fetch_all(pool)
    .await?;
    docs(&rows)
}

// ---- quotas ----

/// Nova's per-project limits (the defaults are the configuration's).
pub const QUOTAS: onestack_db::QuotaTable = onestack_db::QuotaTable("cmp_quotas");

// ---- hosts ----

pub async fn hosts<'c, E: Executor<'c, Database = Any>>(e: E) -> Result<Vec<Host>> {
    let rows = sqlx::query("SELECT doc FROM cmp_hosts ORDER BY host")
        .fetch_all(e)
        .await?;
    docs(&rows)
}

/// One host's record.
pub async fn host<'c, E: Executor<'c, Database = Any>>(e: E, host: &str) -> Result<Option<Host>> {
    let rows = sqlx::query("SELECT doc FROM cmp_hosts WHERE host = $1")
        .bind(host.to_owned())
        .fetch_all(e)
        .await?;
    Ok(docs(&rows)?.pop())
}

pub async fn delete_host<'c, E: Executor<'c, Database = Any>>(e: E, host: &str) -> Result<()> {
    sqlx::query("DELETE FROM cmp_hosts WHERE host = $1")
        .bind(host.to_owned())
        .execute(e)
        .await?;
    Ok(())
}

pub async fn save_host<'c, E: Executor<'c, Database = Any>>(e: E, h: &Host) -> Result<()> {
    sqlx::query(
        "INSERT INTO cmp_hosts (host, updated_at, doc) VALUES ($1, $2, $3) \
         ON CONFLICT (host) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc",
    )
    .bind(h.host.clone())
    .bind(h.updated_at)
    .bind(encode(h)?)
    .execute(e)
    .await?;
    Ok(())
}
