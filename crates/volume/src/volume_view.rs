//! A volume as show, detail, create and update return it, as a typed view that borrows
//! from the volume and serializes straight into the response: a listing of a thousand
//! volumes builds no `serde_json::Value` tree (building and dropping one cost more than
//! the query).

use std::collections::BTreeMap;

use onestack_db::timestamps::micros_naive;
use serde::{Serialize, Serializer};

use crate::model::{AttachStatus, Volume, VolumeSource};
use crate::views::ViewCtx;

/// JSON `null`, for the keys Cinder sends and onestack has no value for.
#[derive(Debug, Clone, Copy)]
pub struct Null;

impl Serialize for Null {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// One of a resource's `self` and `bookmark` links.
#[derive(Debug, Serialize)]
pub struct Link {
    pub rel: &'static str,
    pub href: String,
}

/// Which volume view: the create and update answers lack what show and detail add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeView {
    Answer,
    Detail,
}

/// An attachment whose disk is plugged in, as Cinder lists it on a volume.
#[derive(Debug, Serialize)]
struct AttachmentJson<'a> {
    id: &'a str,
    attachment_id: &'a str,
    volume_id: &'a str,
    server_id: &'a str,
    host_name: &'a Option<String>,
    device: &'a str,
    attached_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct VolumeJson<'a> {
    id: &'a str,
    status: &'static str,
    size: u64,
    availability_zone: &'a str,
    created_at: String,
    updated_at: Option<String>,
    name: &'a Option<String>,
    description: &'a Option<String>,
    volume_type: &'a str,
    snapshot_id: Option<&'a str>,
    source_volid: Option<&'a str>,
    metadata: BTreeMap<&'a str, &'a str>,
    links: [Link; 2],
    user_id: &'a str,
    bootable: &'static str,
    encrypted: bool,
    replication_status: Null,
    consistencygroup_id: Null,
    multiattach: bool,
    attachments: Vec<AttachmentJson<'a>>,
    /// Admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    migration_status: Option<Null>,
    // What Cinder's controller extensions add to show and detail.
    #[serde(
        rename = "os-vol-tenant-attr:tenant_id",
        skip_serializing_if = "Option::is_none"
    )]
    tenant_id: Option<&'a str>,
    #[serde(
        rename = "os-vol-host-attr:host",
        skip_serializing_if = "Option::is_none"
    )]
    host: Option<&'a str>,
    #[serde(
        rename = "os-vol-mig-status-attr:migstat",
        skip_serializing_if = "Option::is_none"
    )]
    migstat: Option<Null>,
    #[serde(
        rename = "os-vol-mig-status-attr:name_id",
        skip_serializing_if = "Option::is_none"
    )]
    name_id: Option<Null>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume_image_metadata: Option<&'a BTreeMap<String, String>>,
    // By microversion.
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<Null>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_id: Option<Null>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_targets: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_uuid: Option<Null>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_name: Option<Null>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume_type_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumes_quota: Option<bool>,
}

impl<'a> VolumeJson<'a> {
    pub fn new(v: &'a Volume, type_name: &'a str, ctx: &ViewCtx, view: VolumeView) -> Self {
        let mut metadata: BTreeMap<&str, &str> = v
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if v.read_only {
            metadata.insert("readonly", "True");
        }
        let detail = view == VolumeView::Detail;
        let admin = ctx.admin;
        let at = |minor| ctx.version.at_least(minor);
        let null_if = |cond: bool| cond.then_some(Null);
        Self {
            id: &v.id,
            status: v.status.as_str(),
            size: v.size,
            availability_zone: &v.availability_zone,
            created_at: micros_naive(v.created_at),
            updated_at: v.updated_at.map(micros_naive),
            name: &v.name,
            description: &v.description,
            volume_type: type_name,
            snapshot_id: match &v.source {
                VolumeSource::Snapshot { snapshot_id } => Some(snapshot_id),
                _ => None,
            },
            source_volid: match &v.source {
                VolumeSource::Volume { volume_id } => Some(volume_id),
                _ => None,
            },
            metadata,
            links: ctx.link_pair("volumes", &v.id),
            user_id: &v.user_id,
            bootable: if v.bootable { "true" } else { "false" },
            encrypted: false,
            replication_status: Null,
            consistencygroup_id: Null,
            multiattach: v.multiattach,
            attachments: v
                .attachments
                .iter()
                .filter(|a| a.status == AttachStatus::Attached)
                .map(|a| AttachmentJson {
                    id: &v.id,
                    attachment_id: &a.id,
                    volume_id: &v.id,
                    server_id: &a.server_id,
                    host_name: &a.host,
                    device: &a.device,
                    attached_at: a.attached_at.map(micros_naive),
                })
                .collect(),
            migration_status: null_if(admin),
            tenant_id: detail.then_some(v.project_id.as_str()),
            host: (detail && admin).then_some(v.host.as_str()),
            migstat: null_if(detail && admin),
            name_id: null_if(detail && admin),
            volume_image_metadata: (detail && !v.image_metadata.is_empty())
                .then_some(&v.image_metadata),
            group_id: null_if(at(13)),
            provider_id: null_if(at(21) && admin),
            // A file on one host is never a target shared with other volumes.
            shared_targets: at(48).then_some(false),
            service_uuid: null_if(at(48)),
            cluster_name: null_if(at(61) && admin),
            volume_type_id: at(63).then_some(v.volume_type_id.as_str()),
            consumes_quota: at(65).then_some(true),
        }
    }
}
