//! `GET /v2/images` as a typed query: Glance's filters, sort keys and marker pagination,
//! within what the caller may see. The SQL is `store/list.rs`'s.

use onestack_api::AuthContext;

use crate::error::{Error, Result};
use crate::model::Image;
use crate::policy::{self, Action};
use crate::service::Images;
use crate::store;

pub const DEFAULT_LIMIT: i64 = 25;
pub const MAX_LIMIT: i64 = 1000;

/// The attributes images can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Status,
    ContainerFormat,
    DiskFormat,
    Size,
    VirtualSize,
    Id,
    CreatedAt,
    UpdatedAt,
    Visibility,
    Owner,
    MinDisk,
}

impl SortKey {
    const ALL: [(&'static str, SortKey); 12] = [
        ("name", SortKey::Name),
        ("status", SortKey::Status),
        ("container_format", SortKey::ContainerFormat),
        ("disk_format", SortKey::DiskFormat),
        ("size", SortKey::Size),
        ("virtual_size", SortKey::VirtualSize),
        ("id", SortKey::Id),
        ("created_at", SortKey::CreatedAt),
        ("updated_at", SortKey::UpdatedAt),
        ("visibility", SortKey::Visibility),
        ("owner", SortKey::Owner),
        ("min_disk", SortKey::MinDisk),
    ];

    pub fn parse(key: &str) -> Result<SortKey> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, k)| *k)
            .ok_or_else(|| Error::BadRequest(format!("Invalid sort key: {key}.")))
    }
}

/// One filter of the list; all of them must hold.
#[derive(Debug, Clone)]
pub enum Filter {
    /// A core attribute (`name`, `status`, `owner`, `disk_format`, `container_format` or
    /// `id`, which are also its column) equal to one of `values` (`in:a,b` lists several).
    OneOf {
        attribute: &'static str,
        values: Vec<String>,
    },
    Tag(String),
    SizeMin(i64),
    SizeMax(i64),
    /// `created_at` or `updated_at` compared (`op` is the comparison, as SQL writes it) with
    /// a time in µs.
    Time {
        attribute: &'static str,
        op: &'static str,
        at: i64,
    },
    Protected(bool),
    /// A free-form property with exactly this value.
    Property {
        name: String,
        value: String,
    },
}

/// Which images a list asks for, and in what order.
#[derive(Debug, Clone)]
pub struct ImageQuery {
    pub filters: Vec<Filter>,
    /// `public`, `private`, `shared`, `community` or `all`; `None` for Glance's default.
    pub visibility: Option<String>,
    /// Which memberships make a shared image listed: `accepted` by default, or `pending`,
    /// `rejected`, `all`.
    pub member_status: String,
    /// Whether hidden images are listed too.
    pub os_hidden: bool,
    /// The order, `true` for ascending; it always ends with `id`, so it is total.
    pub sort: Vec<(SortKey, bool)>,
    pub marker: Option<String>,
    pub limit: i64,
}

/// Who is listing, for the images they may see.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub admin: bool,
    pub project: Option<&'a str>,
}

/// A page of the list, and whether more images follow it.
#[derive(Debug)]
pub struct Page {
    pub images: Vec<Image>,
    pub more: bool,
}

impl Images {
    /// The images the caller may see that `query` selects, one page of them. A query that
    /// did not parse is refused after the caller's `get_images` check.
    pub async fn list(&self, ctx: &AuthContext, query: Result<ImageQuery>) -> Result<Page> {
        policy::enforce(ctx, Action::GetImages, "")?;
        let query = query?;
        let marker = match &query.marker {
            None => None,
            Some(marker) => match store::get(&self.pool, marker).await? {
                Some(m) if self.visible(ctx, &m).await? => Some(m),
                _ => {
                    return Err(Error::BadRequest(format!(
                        "marker {marker} could not be found."
                    )));
                }
            },
        };
        let viewer = Viewer {
            admin: ctx.is_admin(),
            project: ctx.project_id(),
        };
        let mut images = store::list(&self.pool, &query, viewer, marker.as_ref()).await?;
        let limit = usize::try_from(query.limit).unwrap_or(0);
        let more = images.len() > limit;
        images.truncate(limit);
        Ok(Page { images, more })
    }
}
