//! The SQL of `GET /v2/images`: a typed [`ImageQuery`] as one SELECT with its filters, what
//! the viewer may see, keyset pagination after the marker, and the order.

use onestack_db::{Bind, Pool, Sql};

use super::{image, with_tags};
use crate::model::Image;
use crate::ops::list::{Filter, ImageQuery, SortKey, Viewer};

/// The column expression a key sorts by (NULLs compare as the empty value).
fn column(key: SortKey) -> &'static str {
    match key {
        SortKey::Name => "COALESCE(name, '')",
        SortKey::Status => "status",
        SortKey::ContainerFormat => "COALESCE(container_format, '')",
        SortKey::DiskFormat => "COALESCE(disk_format, '')",
        SortKey::Size => "COALESCE(size, -1)",
        SortKey::VirtualSize => "COALESCE(virtual_size, -1)",
        SortKey::Id => "id",
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::Visibility => "visibility",
        SortKey::Owner => "owner",
        SortKey::MinDisk => "min_disk",
    }
}

/// The marker image's value of a sort key, as [`column`] has it.
fn marker_value(image: &Image, key: SortKey) -> Bind {
    let text = |value: &Option<String>| -> Bind { value.clone().unwrap_or_default().into() };
    match key {
        SortKey::Name => text(&image.name),
        SortKey::Status => image.status.as_str().into(),
        SortKey::ContainerFormat => text(&image.container_format),
        SortKey::DiskFormat => text(&image.disk_format),
        SortKey::Size => image.size.unwrap_or(-1).into(),
        SortKey::VirtualSize => image.virtual_size.unwrap_or(-1).into(),
        SortKey::Id => image.id.clone().into(),
        SortKey::CreatedAt => image.created_at.into(),
        SortKey::UpdatedAt => image.updated_at.into(),
        SortKey::Visibility => image.visibility.clone().into(),
        SortKey::Owner => image.owner.clone().into(),
        SortKey::MinDisk => image.min_disk.into(),
    }
}

fn filter(sql: &mut Sql, filter: &Filter) {
    match filter {
        Filter::OneOf { attribute, values } => {
            let alternatives: Vec<String> = values
                .iter()
                .map(|v| format!("{attribute} = {}", sql.bind(v.as_str())))
                .collect();
            sql.and_raw(&format!("({})", alternatives.join(" OR ")));
        }
        Filter::Tag(tag) => {
            sql.and(
                "id IN (SELECT image_id FROM image_tags WHERE tag = {})",
                tag.as_str(),
            );
        }
        Filter::SizeMin(size) => {
            sql.and("size >= {}", *size);
        }
        Filter::SizeMax(size) => {
            sql.and("size <= {}", *size);
        }
        Filter::Time { attribute, op, at } => {
            sql.and(&format!("{attribute} {op} {{}}"), *at);
        }
        Filter::Protected(protected) => {
            sql.and("protected = {}", i64::from(*protected));
        }
        Filter::Property { name, value } => {
            // Properties are a JSON object of strings: `"name":"value"` appears in it.
            let pattern = format!(
                "%{}:{}%",
                serde_json::to_string(name).unwrap_or_default(),
                serde_json::to_string(value).unwrap_or_default()
            );
            sql.and("properties LIKE {}", pattern);
        }
    }
}

/// What the viewer may see (as `Images::visible` decides for one image), narrowed to the
/// visibility the query asks for.
fn visible(sql: &mut Sql, query: &ImageQuery, viewer: Viewer) {
    let visibility = query.visibility.as_deref();
    let member_clause = |sql: &mut Sql, project: &str| -> String {
        let p = sql.bind(project);
        if query.member_status == "all" {
            format!("id IN (SELECT image_id FROM image_members WHERE member_id = {p})")
        } else {
            let s = sql.bind(query.member_status.as_str());
            format!(
                "id IN (SELECT image_id FROM image_members WHERE member_id = {p} AND status = {s})"
            )
        }
    };
    match (visibility, viewer.project, viewer.admin) {
        (Some("all"), _, true) => {}
        (Some(v), _, true) => {
            sql.and("visibility = {}", v);
        }
        (None, _, true) => {
            sql.and_raw("visibility <> 'community'");
        }
        (Some(v @ ("public" | "community")), _, _) => {
            sql.and("visibility = {}", v);
        }
        (_, None, false) => {
            let v = visibility.unwrap_or("public");
            if v != "public" && v != "all" {
                sql.and_raw("1 = 0");
            } else {
                sql.and_raw("visibility = 'public'");
            }
        }
        (v, Some(p), false) => {
            let owner = sql.bind(p);
            let shared = member_clause(sql, p);
            let clause = match v {
                Some("private") => format!("(visibility = 'private' AND owner = {owner})"),
                Some("shared") => {
                    format!("(visibility = 'shared' AND (owner = {owner} OR {shared}))")
                }
                Some("all") => format!(
                    "(visibility IN ('public', 'community') OR owner = {owner} OR (visibility = 'shared' AND {shared}))"
                ),
                _ => format!(
                    "(visibility = 'public' OR owner = {owner} OR (visibility = 'shared' AND {shared}))"
                ),
            };
            sql.and_raw(&clause);
        }
    }
}

/// Keyset pagination: rows strictly after the marker in the sort order.
fn after(sql: &mut Sql, sort: &[(SortKey, bool)], marker: &Image) {
    let mut alternatives = Vec::new();
    for i in 0..sort.len() {
        let mut parts = Vec::new();
        for (j, (key, asc)) in sort.iter().enumerate().take(i + 1) {
            let placeholder = sql.bind(marker_value(marker, *key));
            let op = if j < i {
                "="
            } else if *asc {
                ">"
            } else {
                "<"
            };
            parts.push(format!("{} {op} {placeholder}", column(*key)));
        }
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    sql.and_raw(&format!("({})", alternatives.join(" OR ")));
}

/// The images `query` selects that `viewer` may see, after `marker`: up to one more than
/// the query's limit, so the caller knows whether another page follows.
pub async fn list(
    pool: &Pool,
    query: &ImageQuery,
    viewer: Viewer<'_>,
    marker: Option<&Image>,
) -> sqlx::Result<Vec<Image>> {
    let mut sql = Sql::new("SELECT * FROM images");
    for f in &query.filters {
        filter(&mut sql, f);
    }
    if !query.os_hidden {
        sql.and_raw("os_hidden = 0");
    }
    visible(&mut sql, query, viewer);
    if let Some(marker) = marker {
        after(&mut sql, &query.sort, marker);
    }
    let order: Vec<String> = query
        .sort
        .iter()
        .map(|(key, asc)| format!("{} {}", column(*key), if *asc { "ASC" } else { "DESC" }))
        .collect();
    sql.push(&format!(" ORDER BY {}", order.join(", ")));
    let fetch = sql.bind(query.limit + 1);
    sql.push(&format!(" LIMIT {fetch}"));
    let rows = sql.query().fetch_all(pool).await?;
    let images = rows.iter().map(image).collect::<sqlx::Result<Vec<_>>>()?;
    with_tags(pool, images).await
}
