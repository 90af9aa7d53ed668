//! How block storage resources look on the wire: Cinder's JSON, with the keys each
//! microversion adds only at or above it (clients validate with closed schemas), naive
//! UTC timestamps with microseconds, and links that keep the project segment when the
//! request's URL had one.

use std::collections::BTreeMap;

use onestack_api::microversion::Version;
use onestack_db::timestamps::micros_naive;
use serde_json::{Map, Value, json};

use crate::model::{Backup, Snapshot, SnapshotStatus, Volume, VolumeType};
use crate::ops::quotas::QuotaUsage;
use crate::ops::services::{PoolView, ServiceView};
use crate::ops::volume_input::Upload;
use crate::volume_view::{Link, VolumeJson};

/// What a view depends on besides the resource.
#[derive(Debug, Clone)]
pub struct ViewCtx {
    pub version: Version,
    pub admin: bool,
    /// `http://host:port/volume`.
    pub base: String,
    /// The project segment of the request's URL, if it had one.
    pub url_project: Option<String>,
}

impl ViewCtx {
    /// `self` and `bookmark` links to `collection/id`.
    pub fn links(&self, collection: &str, id: &str) -> Value {
        serde_json::to_value(self.link_pair(collection, id)).unwrap_or(Value::Null)
    }

    /// The same links, typed.
    pub fn link_pair(&self, collection: &str, id: &str) -> [Link; 2] {
        let project = self
            .url_project
            .as_deref()
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        [
            Link {
                rel: "self",
                href: format!("{}/v3{project}/{collection}/{id}", self.base),
            },
            Link {
                rel: "bookmark",
                href: format!("{}{project}/{collection}/{id}", self.base),
            },
        ]
    }

    /// The address of a collection, for `next` links.
    pub fn collection(&self, path: &str) -> String {
        let project = self
            .url_project
            .as_deref()
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        format!("{}/v3{project}/{path}", self.base)
    }
}

fn timestamp(micros: Option<i64>) -> Value {
    micros.map_or(Value::Null, |m| Value::String(micros_naive(m)))
}

/// `GET /volumes`: id, name and links.
pub fn volume_summary(v: &Volume, ctx: &ViewCtx) -> Value {
    json!({"id": v.id, "name": v.name, "links": ctx.links("volumes", &v.id)})
}

pub use crate::volume_view::VolumeView;

/// A volume in full, as show, create and update return it (listings serialize
/// [`VolumeJson`] directly).
pub fn volume(v: &Volume, type_name: &str, ctx: &ViewCtx, view: VolumeView) -> Value {
    serde_json::to_value(VolumeJson::new(v, type_name, ctx, view)).unwrap_or(Value::Null)
}

/// Which snapshot view: a listing's items have the nine base keys only; show and detail add
/// the extended attributes; create and update answers the microversion keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotView {
    Summary,
    Answer,
    Detail,
}

pub fn snapshot(s: &Snapshot, ctx: &ViewCtx, view: SnapshotView) -> Value {
    let mut out = json!({
        "id": s.id,
        "created_at": micros_naive(s.created_at),
        "updated_at": timestamp(s.updated_at),
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "status": s.status.as_str(),
        "size": s.size,
        "metadata": s.metadata,
    });
    if view == SnapshotView::Summary {
        return out;
    }
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    if view == SnapshotView::Detail {
        let progress = if s.status == SnapshotStatus::Available {
            "100%"
        } else {
            "0%"
        };
        map.insert(
            "os-extended-snapshot-attributes:progress".into(),
            json!(progress),
        );
        map.insert(
            "os-extended-snapshot-attributes:project_id".into(),
            json!(s.project_id),
        );
    }
    if ctx.version.at_least(14) {
        map.insert("group_snapshot_id".into(), Value::Null);
    }
    if ctx.version.at_least(41) {
        map.insert("user_id".into(), json!(s.user_id));
    }
    if ctx.version.at_least(65) {
        map.insert("consumes_quota".into(), json!(true));
    }
    out
}

pub fn volume_type(t: &VolumeType, admin: bool) -> Value {
    let mut out = json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "extra_specs": t.extra_specs,
    });
    if admin && let Some(map) = out.as_object_mut() {
        map.insert("qos_specs_id".into(), Value::Null);
        map.insert("os-volume-type-access:is_public".into(), json!(t.is_public));
    }
    out
}

/// `os-quota-sets`: limits (or, with `usage`, limit/in_use/reserved) with the project's id.
pub fn quota_set(
    project: Option<&str>,
    quotas: &BTreeMap<&'static str, QuotaUsage>,
    usage: bool,
    type_names: &[String],
) -> Value {
    let mut out = Map::new();
    if let Some(project) = project {
        out.insert("id".into(), json!(project));
    }
    let render = |q: QuotaUsage| {
        if usage {
            json!({"limit": q.limit, "in_use": q.in_use, "reserved": 0})
        } else {
            json!(q.limit)
        }
    };
    for (resource, q) in quotas {
        out.insert((*resource).into(), render(*q));
    }
    // Per-type quotas are not set apart from the project's: unlimited within those.
    for name in type_names {
        for resource in ["volumes", "gigabytes", "snapshots"] {
            let unlimited = QuotaUsage {
                limit: -1,
                in_use: 0,
            };
            out.insert(format!("{resource}_{name}"), render(unlimited));
        }
    }
    Value::Object(out)
}

/// `GET /limits`: Cinder's ten absolute keys.
pub fn limits(quotas: &BTreeMap<&'static str, QuotaUsage>) -> Value {
    let q = |r: &str| {
        quotas.get(r).copied().unwrap_or(QuotaUsage {
            limit: -1,
            in_use: 0,
        })
    };
    json!({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": q("volumes").limit,
        "maxTotalSnapshots": q("snapshots").limit,
        "maxTotalVolumeGigabytes": q("gigabytes").limit,
        "maxTotalBackups": q("backups").limit,
        "maxTotalBackupGigabytes": q("backup_gigabytes").limit,
        "totalVolumesUsed": q("volumes").in_use,
        "totalGigabytesUsed": q("gigabytes").in_use,
        "totalSnapshotsUsed": q("snapshots").in_use,
        "totalBackupsUsed": q("backups").in_use,
        "totalBackupGigabytesUsed": q("backup_gigabytes").in_use,
    }}})
}

/// Which backup view: the list and the create and update answers are the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupView {
    Summary,
    Detail,
}

/// A backup as Cinder shows it; `dependents`: incremental backups are made on it.
pub fn backup(b: &Backup, ctx: &ViewCtx, view: BackupView, dependents: bool) -> Value {
    let links = ctx.links("backups", &b.id);
    if view == BackupView::Summary {
        return json!({"id": b.id, "name": b.name, "links": links});
    }
    let mut out = json!({
        "id": b.id,
        "name": b.name,
        "description": b.description,
        "links": links,
        "status": b.status.as_str(),
        "size": b.size,
        "volume_id": b.volume_id,
        "snapshot_id": b.snapshot_id,
        "availability_zone": b.availability_zone,
        "container": b.container,
        "object_count": 1,
        "fail_reason": b.fail_reason,
        "is_incremental": b.parent_id.is_some(),
        "has_dependent_backups": dependents,
        "created_at": micros_naive(b.created_at),
        "updated_at": timestamp(b.updated_at),
        "data_timestamp": micros_naive(b.data_timestamp),
    });
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    if ctx.admin && ctx.version.at_least(18) {
        map.insert(
            "os-backup-project-attr:project_id".into(),
            json!(b.project_id),
        );
    }
    if ctx.version.at_least(43) {
        map.insert("metadata".into(), json!(b.metadata));
    }
    if ctx.version.at_least(56) {
        map.insert("user_id".into(), json!(b.user_id));
    }
    if ctx.version.at_least(64) {
        map.insert("encryption_key_id".into(), Value::Null);
    }
    out
}

/// What `os-volume_upload_image` answers: the volume as it is now and the image it fills.
pub fn upload(u: &Upload, ctx: &ViewCtx) -> Value {
    let v = &u.volume;
    let mut out = json!({
        "id": v.id,
        "updated_at": timestamp(v.updated_at),
        "status": v.status.as_str(),
        "display_description": v.description,
        "size": v.size,
        "volume_type": volume_type(&u.volume_type, ctx.admin),
        "image_id": u.image_id,
        "container_format": u.container_format,
        "disk_format": u.disk_format,
        "image_name": u.image_name,
    });
    if ctx.version.at_least(1) {
        out["visibility"] = json!(u.visibility);
        out["protected"] = json!(u.protected);
    }
    out
}

/// One `os-services` row as Cinder shows it (`cluster` from 3.7, `backend_state` of a
/// volume service from 3.49).
pub fn service(s: &ServiceView, ctx: &ViewCtx) -> Value {
    let state = if s.up { "up" } else { "down" };
    let mut out = json!({
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": "enabled",
        "state": state,
        "updated_at": timestamp(s.updated_at),
        "disabled_reason": null,
    });
    if ctx.version.at_least(7) {
        out["cluster"] = Value::Null;
    }
    if s.binary == "cinder-volume" {
        out["replication_status"] = json!("disabled");
        out["active_backend_id"] = Value::Null;
        out["frozen"] = json!(false);
        if ctx.version.at_least(49) {
            out["backend_state"] = json!(state);
        }
    }
    out
}

/// One pool of `scheduler-stats/get_pools`; `detail` adds its capabilities.
pub fn pool(p: &PoolView, detail: bool) -> Value {
    let mut out = json!({"name": p.name});
    if detail {
        let gib = |bytes: u64| (bytes as f64 / GIB_F64 * 100.0).round() / 100.0;
        out["capabilities"] = json!({
            "pool_name": p.backend,
            "volume_backend_name": p.backend,
            "vendor_name": "onestack",
            "driver_version": env!("CARGO_PKG_VERSION"),
            "storage_protocol": "file",
            "total_capacity_gb": gib(p.report.total_bytes),
            "free_capacity_gb": gib(p.report.free_bytes),
            "allocated_capacity_gb": p.allocated_gb,
            "provisioned_capacity_gb": p.allocated_gb,
            "thin_provisioning_support": true,
            "thick_provisioning_support": false,
            "reserved_percentage": 0,
            "multiattach": true,
            "QoS_support": false,
            "total_volumes": p.volumes,
            "timestamp": timestamp(Some(p.report.at)),
        });
    }
    out
}

const GIB_F64: f64 = (1u64 << 30) as f64;

/// `capabilities/{host}`: the file backend, and the one extra spec of a volume type it acts
/// on (`multiattach`).
pub fn capabilities(host: &str) -> Value {
    let backend = crate::service::BACKEND;
    json!({
        "namespace": format!("OS::Storage::Capabilities::{host}"),
        "vendor_name": "onestack",
        "volume_backend_name": backend,
        "pool_name": backend,
        "driver_version": env!("CARGO_PKG_VERSION"),
        "storage_protocol": "file",
        "display_name": "Capabilities of onestack's file backend",
        "description": "One thin qcow2 file per volume on the host's disk.",
        "visibility": "public",
        "replication_targets": [],
        "properties": {
            "multiattach": {
                "title": "Multiattach",
                "description": "Volumes of a type with \"<is> True\" may be attached to several servers at once.",
                "type": "boolean",
            },
        },
    })
}
