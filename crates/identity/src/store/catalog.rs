//! Regions, services and endpoints.

use onestack_db::{Pool, Row, Sql};

use super::{
    Statement, execute_by_id, extra, extra_json, fetch_all, fetch_one, flag, opt_text, text,
};
use crate::model::{Endpoint, Region, Service};

fn region(row: &Row) -> sqlx::Result<Region> {
    Ok(Region {
        id: text(row, "id")?,
        description: text(row, "description")?,
        parent_region_id: opt_text(row, "parent_region_id")?,
        extra: extra(row)?,
    })
}

pub async fn get_region(pool: &Pool, id: &str) -> sqlx::Result<Option<Region>> {
    fetch_one(pool, "SELECT * FROM regions WHERE id = $1", id, region).await
}

pub async fn list_regions(
    pool: &Pool,
    parent_region_id: Option<&str>,
) -> sqlx::Result<Vec<Region>> {
    let mut sql = Sql::new("SELECT * FROM regions");
    sql.and_eq_opt("parent_region_id", parent_region_id);
    sql.push(" ORDER BY id");
    fetch_all(pool, &sql, region).await
}

/// `sql` (an insert or an update) with the region's columns bound as `$1` (id) to `$4`.
fn region_columns<'q>(sql: &'static str, r: &'q Region) -> Statement<'q> {
    sqlx::query(sql)
        .bind(&r.id)
        .bind(&r.description)
        .bind(r.parent_region_id.clone())
        .bind(extra_json(&r.extra))
}

pub async fn insert_region(pool: &Pool, r: &Region) -> sqlx::Result<()> {
    let sql =
        "INSERT INTO regions (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)";
    region_columns(sql, r).execute(pool).await?;
    Ok(())
}

pub async fn update_region(pool: &Pool, r: &Region) -> sqlx::Result<()> {
    let sql =
        "UPDATE regions SET description = $2, parent_region_id = $3, extra = $4 WHERE id = $1";
    region_columns(sql, r).execute(pool).await?;
    Ok(())
}

/// Whether anything still refers to the region (child regions or endpoints).
pub async fn region_in_use(pool: &Pool, id: &str) -> sqlx::Result<bool> {
    Ok(sqlx::query(
        "SELECT 1 FROM regions WHERE parent_region_id = $1 UNION SELECT 1 FROM endpoints WHERE region_id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    .is_some())
}

pub async fn delete_region(pool: &Pool, id: &str) -> sqlx::Result<()> {
    execute_by_id(pool, "DELETE FROM regions WHERE id = $1", id).await
}

fn service(row: &Row) -> sqlx::Result<Service> {
    Ok(Service {
        id: text(row, "id")?,
        service_type: text(row, "type")?,
        name: text(row, "name")?,
        description: text(row, "description")?,
        enabled: flag(row, "enabled")?,
        extra: extra(row)?,
    })
}

pub async fn get_service(pool: &Pool, id: &str) -> sqlx::Result<Option<Service>> {
    fetch_one(pool, "SELECT * FROM services WHERE id = $1", id, service).await
}

pub async fn list_services(
    pool: &Pool,
    name: Option<&str>,
    service_type: Option<&str>,
) -> sqlx::Result<Vec<Service>> {
    let mut sql = Sql::new("SELECT * FROM services");
    sql.and_eq_opt("name", name)
        .and_eq_opt("type", service_type);
    sql.push(" ORDER BY type, id");
    fetch_all(pool, &sql, service).await
}

/// `sql` (an insert or an update) with the service's columns bound as `$1` (id) to `$6`.
fn service_columns<'q>(sql: &'static str, s: &'q Service) -> Statement<'q> {
    sqlx::query(sql)
        .bind(&s.id)
        .bind(&s.service_type)
        .bind(&s.name)
        .bind(&s.description)
        .bind(i64::from(s.enabled))
        .bind(extra_json(&s.extra))
}

pub async fn insert_service(pool: &Pool, s: &Service) -> sqlx::Result<()> {
    let sql = "INSERT INTO services (id, type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)";
    service_columns(sql, s).execute(pool).await?;
    Ok(())
}

pub async fn update_service(pool: &Pool, s: &Service) -> sqlx::Result<()> {
    let sql = "UPDATE services SET type = $2, name = $3, description = $4, enabled = $5, extra = $6 WHERE id = $1";
    service_columns(sql, s).execute(pool).await?;
    Ok(())
}

/// Deletes a service with its endpoints, as Keystone does.
pub async fn delete_service(pool: &Pool, id: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM endpoints WHERE service_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM services WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

fn endpoint(row: &Row) -> sqlx::Result<Endpoint> {
    Ok(Endpoint {
        id: text(row, "id")?,
        service_id: text(row, "service_id")?,
        interface: text(row, "interface")?,
        url: text(row, "url")?,
        region_id: opt_text(row, "region_id")?,
        enabled: flag(row, "enabled")?,
        extra: extra(row)?,
    })
}

pub async fn get_endpoint(pool: &Pool, id: &str) -> sqlx::Result<Option<Endpoint>> {
    fetch_one(pool, "SELECT * FROM endpoints WHERE id = $1", id, endpoint).await
}

pub async fn list_endpoints(
    pool: &Pool,
    interface: Option<&str>,
    service_id: Option<&str>,
    region_id: Option<&str>,
) -> sqlx::Result<Vec<Endpoint>> {
    let mut sql = Sql::new("SELECT * FROM endpoints");
    sql.and_eq_opt("interface", interface)
        .and_eq_opt("service_id", service_id)
        .and_eq_opt("region_id", region_id);
    sql.push(" ORDER BY service_id, interface, id");
    fetch_all(pool, &sql, endpoint).await
}

/// `sql` (an insert or an update) with the endpoint's columns bound as `$1` (id) to `$7`.
fn endpoint_columns<'q>(sql: &'static str, e: &'q Endpoint) -> Statement<'q> {
    sqlx::query(sql)
        .bind(&e.id)
        .bind(&e.service_id)
        .bind(&e.interface)
        .bind(&e.url)
        .bind(e.region_id.clone())
        .bind(i64::from(e.enabled))
        .bind(extra_json(&e.extra))
}

pub async fn insert_endpoint(pool: &Pool, e: &Endpoint) -> sqlx::Result<()> {
    let sql = "INSERT INTO endpoints (id, service_id, interface, url, region_id, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    endpoint_columns(sql, e).execute(pool).await?;
    Ok(())
}

pub async fn update_endpoint(pool: &Pool, e: &Endpoint) -> sqlx::Result<()> {
    let sql = "UPDATE endpoints SET service_id = $2, interface = $3, url = $4, region_id = $5, enabled = $6, extra = $7 WHERE id = $1";
    endpoint_columns(sql, e).execute(pool).await?;
    Ok(())
}

pub async fn delete_endpoint(pool: &Pool, id: &str) -> sqlx::Result<()> {
    execute_by_id(pool, "DELETE FROM endpoints WHERE id = $1", id).await
}
