//! Over 600 lines on purpose: every SQL statement of the network service in one place, so the
//! constraint tables and the documents they guard are read together.
//!
//! SQL for the network service. Resources are JSON documents next to the columns queries
//! select on; the constraint tables (addresses, MACs, segments, rule keys) make collisions
//! impossible whatever the interleaving of requests.

use std::net::IpAddr;

use onestack_db::{Any, Pool, RowExt, Sql, Tx};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Executor;

use crate::error::{Error, Result};
use crate::model::{FloatingIp, Network, Port, Router, Rule, SecurityGroup, Subnet};

/// The document tables.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Networks,
    Subnets,
    Ports,
    SecurityGroups,
    Rules,
    Routers,
    FloatingIps,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Networks => "net_networks",
            Table::Subnets => "net_subnets",
            Table::Ports => "net_ports",
            Table::SecurityGroups => "net_security_groups",
            Table::Rules => "net_security_group_rules",
            Table::Routers => "net_routers",
            Table::FloatingIps => "net_floating_ips",
        }
    }
}

fn decode<T: DeserializeOwned>(doc: &str) -> Result<T> {
    Ok(onestack_db::decode(doc)?)
}

fn encode<T: Serialize>(doc: &T) -> Result<String> {
    Ok(onestack_db::encode(doc)?)
}

/// Begins a transaction that holds the write lock from its first statement, so that what it
/// reads is not overtaken by another writer before it writes (SQLite would otherwise fail the
/// upgrade with SQLITE_BUSY instead of waiting).
pub async fn begin_write(pool: &Pool) -> Result<Tx> {
    Ok(onestack_db::begin_write(pool).await?)
}

pub async fn get<'c, T, E>(e: E, table: Table, id: &str) -> Result<Option<T>>
where
    T: DeserializeOwned,
    E: Executor<'c, Database = Any>,
{
    let sql = format!("SELECT doc FROM {} WHERE id = $1", table.name());
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_owned())
        .fetch_optional(e)
        .await?;
    row.map(|r| decode(&r.try_get::<String, _>("doc")?))
        .transpose()
}

/// Documents of `table` matching `column = value` (all of them when `filter` is `None`).
pub async fn list<'c, T, E>(e: E, table: Table, filter: Option<(&str, &str)>) -> Result<Vec<T>>
where
    T: DeserializeOwned,
    E: Executor<'c, Database = Any>,
{
    let mut sql = Sql::new(&format!("SELECT doc FROM {}", table.name()));
    if let Some((column, value)) = filter {
        // Column names come from this crate only.
        sql.and(&format!("{column} = {{}}"), value);
    }
    sql.push(" ORDER BY id");
    let rows = sql.query().fetch_all(e).await?;
    rows.iter()
        .map(|r| decode(&r.try_get::<String, _>("doc")?))
        .collect()
}

pub async fn count(tx: &mut Tx, table: Table, project_id: &str) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) AS n FROM {} WHERE project_id = $1",
        table.name()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(project_id.to_owned())
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get("n")?)
}

/// Deletes the row `id` of a resource a caller asked to delete; `gone` is the error when
/// another request deleted it first (the caller's lookup ran before this transaction), so
/// of two deletes racing, one succeeds and the other is told it is gone.
pub async fn delete_requested(
    tx: &mut Tx,
    table: Table,
    id: &str,
    gone: impl FnOnce(&str) -> Error,
) -> Result<()> {
    if delete(tx, table, id).await? {
        Ok(())
    } else {
        Err(gone(id))
    }
}

/// Deletes the row `id`; whether there was one.
pub async fn delete(tx: &mut Tx, table: Table, id: &str) -> Result<bool> {
    let sql = format!("DELETE FROM {} WHERE id = $1", table.name());
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_owned())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn insert_network(tx: &mut Tx, n: &Network) -> Result<()> {
    sqlx::query("INSERT INTO net_networks (id, project_id, revision, doc) VALUES ($1, $2, $3, $4)")
        .bind(n.id.clone())
        .bind(n.project_id.clone())
        .bind(n.std.revision_number)
        .bind(encode(n)?)
        .execute(&mut **tx)
        .await?;
    if let Some(key) = n.segment.key() {
        sqlx::query("INSERT INTO net_segments (segment_key, network_id) VALUES ($1, $2)")
            .bind(key)
            .bind(n.id.clone())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Segment keys in use with a prefix, e.g. every `vxlan:` id.
pub async fn segment_keys(tx: &mut Tx, prefix: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT segment_key FROM net_segments WHERE segment_key LIKE $1")
        .bind(format!("{prefix}%"))
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("segment_key")?))
        .collect()
}

pub async fn insert_subnet(tx: &mut Tx, s: &Subnet) -> Result<()> {
    sqlx::query(
        "INSERT INTO net_subnets (id, project_id, network_id, revision, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(s.id.clone())
    .bind(s.project_id.clone())
    .bind(s.network_id.clone())
    .bind(s.std.revision_number)
    .bind(encode(s)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_port(tx: &mut Tx, p: &Port) -> Result<()> {
    sqlx::query(
        "INSERT INTO net_ports (id, project_id, network_id, mac_address, host_id, revision, doc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.id.clone())
    .bind(p.project_id.clone())
    .bind(p.network_id.clone())
    .bind(p.mac_address.clone())
    .bind(p.host_id.clone())
    .bind(p.std.revision_number)
    .bind(encode(p)?)
    .execute(&mut **tx)
    .await?;
    write_port_links(tx, p).await
}

/// Rewrites a port's addresses and group memberships from its document.
async fn write_port_links(tx: &mut Tx, p: &Port) -> Result<()> {
    sqlx::query("DELETE FROM net_ip_allocations WHERE port_id = $1")
        .bind(p.id.clone())
        .execute(&mut **tx)
        .await?;
    for ip in &p.fixed_ips {
        sqlx::query(
            "INSERT INTO net_ip_allocations (subnet_id, ip_address, network_id, port_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(ip.subnet_id.clone())
        .bind(ip.ip_address.to_string())
        .bind(p.network_id.clone())
        .bind(p.id.clone())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("DELETE FROM net_port_security_groups WHERE port_id = $1")
        .bind(p.id.clone())
        .execute(&mut **tx)
        .await?;
    for group in &p.security_groups {
        sqlx::query(
            "INSERT INTO net_port_security_groups (port_id, security_group_id) VALUES ($1, $2)",
        )
        .bind(p.id.clone())
        .bind(group.clone())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Replaces a document whose revision is still `previous`; false when someone else changed
/// it first.
async fn replace(
    tx: &mut Tx,
    table: Table,
    id: &str,
    previous: i64,
    revision: i64,
    doc: String,
) -> Result<bool> {
    let sql = format!(
        "UPDATE {} SET doc = $1, revision = $2 WHERE id = $3 AND revision = $4",
        table.name()
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(doc)
        .bind(revision)
        .bind(id.to_owned())
        .bind(previous)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

fn concurrent(what: &str, id: &str) -> Error {
    Error::conflict(
        "RevisionNumberConstraintFailed",
        format!("{what} {id} was changed by another request; retry."),
    )
}

pub async fn update_network(tx: &mut Tx, n: &Network, previous: i64) -> Result<()> {
    if !replace(
        tx,
        Table::Networks,
        &n.id,
        previous,
        n.std.revision_number,
        encode(n)?,
    )
    .await?
    {
        return Err(concurrent("Network", &n.id));
    }
    Ok(())
}

pub async fn update_subnet(tx: &mut Tx, s: &Subnet, previous: i64) -> Result<()> {
    if !replace(
        tx,
        Table::Subnets,
        &s.id,
        previous,
        s.std.revision_number,
        encode(s)?,
    )
    .await?
    {
        return Err(concurrent("Subnet", &s.id));
    }
    Ok(())
}

pub async fn update_port(tx: &mut Tx, p: &Port, previous: i64) -> Result<()> {
    if !replace(
        tx,
        Table::Ports,
        &p.id,
        previous,
        p.std.revision_number,
        encode(p)?,
    )
    .await?
    {
        return Err(concurrent("Port", &p.id));
    }
    sqlx::query("UPDATE net_ports SET mac_address = $1, host_id = $2 WHERE id = $3")
        .bind(p.mac_address.clone())
        .bind(p.host_id.clone())
        .bind(p.id.clone())
        .execute(&mut **tx)
        .await?;
    write_port_links(tx, p).await
}

pub async fn update_group(tx: &mut Tx, g: &SecurityGroup, previous: i64) -> Result<()> {
    if !replace(
        tx,
        Table::SecurityGroups,
        &g.id,
        previous,
        g.std.revision_number,
        encode(g)?,
    )
    .await?
    {
        return Err(concurrent("Security group", &g.id));
    }
    Ok(())
}

pub async fn update_rule(tx: &mut Tx, r: &Rule) -> Result<()> {
    sqlx::query("UPDATE net_security_group_rules SET doc = $1 WHERE id = $2")
        .bind(encode(r)?)
        .bind(r.id.clone())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether another port of the network already has this MAC (the unique index's question).
pub async fn mac_taken(
    tx: &mut Tx,
    network_id: &str,
    mac: &str,
    except_port: &str,
) -> Result<bool> {
    let row = sqlx::query(
        "SELECT count(*) AS n FROM net_ports WHERE network_id = $1 AND mac_address = $2 AND id <> $3",
    )
    .bind(network_id.to_owned())
    .bind(mac.to_owned())
    .bind(except_port.to_owned())
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Addresses taken in a subnet.
pub async fn allocated(tx: &mut Tx, subnet_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT ip_address FROM net_ip_allocations WHERE subnet_id = $1")
        .bind(subnet_id.to_owned())
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("ip_address")?))
        .collect()
}

/// Allocation counts per subnet, for IP availability.
pub async fn allocation_counts(pool: &Pool) -> Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT subnet_id, count(*) AS n FROM net_ip_allocations GROUP BY subnet_id")
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("subnet_id")?, r.try_get("n")?)))
        .collect()
}

pub async fn ports_using_subnet(tx: &mut Tx, subnet_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT port_id FROM net_ip_allocations WHERE subnet_id = $1")
        .bind(subnet_id.to_owned())
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("port_id")?))
        .collect()
}

pub async fn group_in_use(tx: &mut Tx, group_id: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT count(*) AS n FROM net_port_security_groups WHERE security_group_id = $1",
    )
    .bind(group_id.to_owned())
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

pub async fn insert_group(tx: &mut Tx, g: &SecurityGroup) -> Result<()> {
    sqlx::query(
        "INSERT INTO net_security_groups (id, project_id, revision, doc) VALUES ($1, $2, $3, $4)",
    )
    .bind(g.id.clone())
    .bind(g.project_id.clone())
    .bind(g.std.revision_number)
    .bind(encode(g)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn insert_rule(tx: &mut Tx, r: &Rule, dedupe_key: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO net_security_group_rules (id, project_id, security_group_id, dedupe_key, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(r.id.clone())
    .bind(r.project_id.clone())
    .bind(r.security_group_id.clone())
    .bind(dedupe_key.to_owned())
    .bind(encode(r)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The id of the rule with this key in a group, if any.
pub async fn rule_with_key(
    tx: &mut Tx,
    group_id: &str,
    dedupe_key: &str,
) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT id FROM net_security_group_rules WHERE security_group_id = $1 AND dedupe_key = $2",
    )
    .bind(group_id.to_owned())
    .bind(dedupe_key.to_owned())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

pub async fn default_group_id<'c, E: Executor<'c, Database = Any>>(
    e: E,
    project_id: &str,
) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT security_group_id FROM net_default_security_groups WHERE project_id = $1",
    )
    .bind(project_id.to_owned())
    .fetch_optional(e)
    .await?;
    Ok(row.map(|r| r.try_get("security_group_id")).transpose()?)
}

pub async fn set_default_group(tx: &mut Tx, project_id: &str, group_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO net_default_security_groups (project_id, security_group_id) VALUES ($1, $2)",
    )
    .bind(project_id.to_owned())
    .bind(group_id.to_owned())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn quota_overrides<'c, E: Executor<'c, Database = Any>>(
    e: E,
    project_id: Option<&str>,
) -> Result<Vec<(String, String, i64)>> {
    let mut sql = Sql::new("SELECT project_id, resource, hard_limit FROM net_quotas");
    sql.and_eq_opt("project_id", project_id);
    let rows = sql.query().fetch_all(e).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("project_id")?,
                r.try_get("resource")?,
                r.try_get("hard_limit")?,
            ))
        })
        .collect()
}

pub async fn set_quota(tx: &mut Tx, project_id: &str, resource: &str, limit: i64) -> Result<()> {
    sqlx::query("DELETE FROM net_quotas WHERE project_id = $1 AND resource = $2")
        .bind(project_id.to_owned())
        .bind(resource.to_owned())
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO net_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3)")
        .bind(project_id.to_owned())
        .bind(resource.to_owned())
        .bind(limit)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn reset_quotas(pool: &Pool, project_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM net_quotas WHERE project_id = $1")
        .bind(project_id.to_owned())
        .execute(pool)
        .await?;
    Ok(())
}

/// Records a host's agent and its tunnel address (the first report also when it came).
pub async fn heartbeat(pool: &Pool, host: &str, tunnel_ip: Option<&str>, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO net_hosts (host, tunnel_ip, heartbeat_at, created_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (host) DO UPDATE SET tunnel_ip = excluded.tunnel_ip, \
         heartbeat_at = excluded.heartbeat_at",
    )
    .bind(host.to_owned())
    .bind(tunnel_ip.map(str::to_owned))
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// A host's network agent as it last reported.
#[derive(Debug, Clone)]
pub struct AgentHost {
    pub host: String,
    pub tunnel_ip: Option<String>,
    pub heartbeat_at: i64,
    pub created_at: i64,
}

/// Every host whose network agent reported, by name.
pub async fn agent_hosts(pool: &Pool) -> Result<Vec<AgentHost>> {
    let rows = sqlx::query(
        "SELECT host, tunnel_ip, heartbeat_at, created_at FROM net_hosts ORDER BY host",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AgentHost {
                host: r.try_get("host")?,
                tunnel_ip: r.try_get("tunnel_ip")?,
                heartbeat_at: r.try_get("heartbeat_at")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Every agent host with its tunnel address.
pub async fn hosts(pool: &Pool) -> Result<Vec<(String, Option<String>)>> {
    let rows = sqlx::query("SELECT host, tunnel_ip FROM net_hosts ORDER BY host")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("host")?, r.try_get("tunnel_ip")?)))
        .collect()
}

/// Sets a port's or floating IP's status without touching its revision (the agent
/// reporting what it did).
pub async fn set_status(pool: &Pool, table: Table, id: &str, status: &str) -> Result<()> {
    let mut tx = begin_write(pool).await?;
    if let Some(mut doc) = get::<serde_json::Value, _>(&mut *tx, table, id).await?
        && doc["status"] != status
    {
        doc["status"] = serde_json::Value::from(status);
        let sql = format!("UPDATE {} SET doc = $1 WHERE id = $2", table.name());
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(encode(&doc)?)
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn insert_router(tx: &mut Tx, r: &Router) -> Result<()> {
    sqlx::query("INSERT INTO net_routers (id, project_id, revision, doc) VALUES ($1, $2, $3, $4)")
        .bind(r.id.clone())
        .bind(r.project_id.clone())
        .bind(r.std.revision_number)
        .bind(encode(r)?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn update_router(tx: &mut Tx, r: &Router, previous: i64) -> Result<()> {
    if !replace(
        tx,
        Table::Routers,
        &r.id,
        previous,
        r.std.revision_number,
        encode(r)?,
    )
    .await?
    {
        return Err(concurrent("Router", &r.id));
    }
    Ok(())
}

/// Fails with Neutron's `FloatingIPPortAlreadyAssociated` when the fixed address already
/// carries another floating IP (the unique `association` column decides).
async fn write_association(tx: &mut Tx, f: &FloatingIp) -> Result<()> {
    let done = sqlx::query("UPDATE net_floating_ips SET association = $1 WHERE id = $2")
        .bind(f.association())
        .bind(f.id.clone())
        .execute(&mut **tx)
        .await;
    match done {
        Err(e) if onestack_db::is_unique_violation(&e) => Err(Error::conflict(
            "FloatingIPPortAlreadyAssociated",
            format!(
                "Cannot associate floating IP {} ({}) with port {} using fixed IP {}, as that fixed IP already has a floating IP on external network {}.",
                f.floating_ip_address,
                f.id,
                f.port_id.as_deref().unwrap_or_default(),
                f.fixed_ip_address
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
                f.floating_network_id
            ),
        )),
        other => other.map(drop).map_err(Error::from),
    }
}

pub async fn insert_floating_ip(tx: &mut Tx, f: &FloatingIp) -> Result<()> {
    sqlx::query(
        "INSERT INTO net_floating_ips (id, project_id, floating_network_id, revision, doc) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(f.id.clone())
    .bind(f.project_id.clone())
    .bind(f.floating_network_id.clone())
    .bind(f.std.revision_number)
    .bind(encode(f)?)
    .execute(&mut **tx)
    .await?;
    write_association(tx, f).await
}

pub async fn update_floating_ip(tx: &mut Tx, f: &FloatingIp, previous: i64) -> Result<()> {
    if !replace(
        tx,
        Table::FloatingIps,
        &f.id,
        previous,
        f.std.revision_number,
        encode(f)?,
    )
    .await?
    {
        return Err(concurrent("Floating IP", &f.id));
    }
    write_association(tx, f).await
}

/// The port that holds address `ip` in one of `subnet_ids`.
pub async fn port_holding(
    pool: &Pool,
    subnet_ids: &[String],
    ip: IpAddr,
) -> Result<Option<String>> {
    let rows =
        sqlx::query("SELECT subnet_id, port_id FROM net_ip_allocations WHERE ip_address = $1")
            .bind(ip.to_string())
            .fetch_all(pool)
            .await?;
    for r in rows {
        if subnet_ids.contains(&r.try_get::<String, _>("subnet_id")?) {
            return Ok(Some(r.try_get("port_id")?));
        }
    }
    Ok(None)
}

/// The floating IP that carries `fixed` of port `port_id`.
pub async fn floating_ip_of(
    pool: &Pool,
    port_id: &str,
    fixed: IpAddr,
) -> Result<Option<FloatingIp>> {
    let association = FloatingIp::association_of(port_id, fixed);
    let row = sqlx::query("SELECT doc FROM net_floating_ips WHERE association = $1")
        .bind(association)
        .fetch_optional(pool)
        .await?;
    row.map(|r| decode(&r.try_get::<String, _>("doc")?))
        .transpose()
}
