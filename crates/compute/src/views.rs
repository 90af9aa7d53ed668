//! How resources look on the wire, per microversion.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::microversion::Version;
use crate::model::{
    Aggregate, Fault, Flavor, InstanceAction, Keypair, Server, ServerGroup, VolumeAttachment,
};
use crate::states::{self, VmState};

/// The naive microsecond format some Nova fields use: `2026-11-23T10:40:52.000000`.
pub use onestack_db::timestamps::micros_naive as time_micro;
/// Parses the timestamps clients send (`changes-since`, usage periods).
pub use onestack_db::timestamps::parse as parse_time;
/// Nova's timestamp format: `2026-11-23T10:40:52Z`.
pub use onestack_db::timestamps::seconds_utc as time;

pub fn links(base: &str, collection: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/v2.1/{collection}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/{collection}/{id}")},
    ])
}

pub fn flavor(f: &Flavor, v: Version, base: &str, detail: bool) -> Value {
    let mut out = json!({"id": f.id, "name": f.name, "links": links(base, "flavors", &f.id)});
    if v.at_least(55) {
        out["description"] = json!(f.description);
    }
    if !detail {
        return out;
    }
    let swap = if f.swap == 0 && !v.at_least(75) {
        json!("")
    } else {
        json!(f.swap)
    };
    out["ram"] = json!(f.ram);
    out["disk"] = json!(f.disk);
    out["vcpus"] = json!(f.vcpus);
    out["swap"] = swap;
    out["OS-FLV-EXT-DATA:ephemeral"] = json!(f.ephemeral);
    out["OS-FLV-DISABLED:disabled"] = json!(f.disabled);
    out["os-flavor-access:is_public"] = json!(f.is_public);
    out["rxtx_factor"] = json!(f.rxtx_factor);
    if v.at_least(61) {
        out["extra_specs"] = json!(f.extra_specs);
    }
    out
}

pub fn keypair(k: &Keypair, v: Version, detail: bool) -> Value {
    let mut out = json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint});
    if v.at_least(2) {
        out["type"] = json!(k.key_type);
    }
    if detail {
        out["user_id"] = json!(k.user_id);
        out["created_at"] = json!(time_micro(k.created_at));
        out["deleted"] = json!(false);
        out["deleted_at"] = Value::Null;
        out["updated_at"] = Value::Null;
        out["id"] = json!(k.id);
    }
    out
}

/// Floating addresses by the port and fixed address that carry them.
pub type FloatingAddresses = HashMap<(String, String), Vec<String>>;

/// `addresses`: network name → addresses with their version, MAC and type; each fixed
/// address is followed by the floating addresses it carries, as Nova lists them.
pub fn addresses(server: &Server, floating: &FloatingAddresses) -> Value {
    let entry = |addr: &str, mac: &str, kind: &str| {
        let version = if addr.contains(':') { 6 } else { 4 };
        json!({
            "addr": addr, "version": version,
            "OS-EXT-IPS-MAC:mac_addr": mac, "OS-EXT-IPS:type": kind,
        })
    };
    let mut out = Map::new();
    for nic in &server.nics {
        let list = out
            .entry(nic.network_name.clone())
            .or_insert_with(|| json!([]));
        if let Value::Array(list) = list {
            for ip in &nic.ips {
                list.push(entry(ip, &nic.mac, "fixed"));
                let carried = floating.get(&(nic.port_id.clone(), ip.clone()));
                for address in carried.into_iter().flatten() {
                    list.push(entry(address, &nic.mac, "floating"));
                }
            }
        }
    }
    Value::Object(out)
}

fn fault(f: &Fault, admin: bool) -> Value {
    let mut out = json!({"code": f.code, "created": time(f.created), "message": f.message});
    if admin || f.code != 500 {
        out["details"] = json!(f.details);
    }
    out
}

/// Nova's `hostId`: sha224 of project and host, stable per project, revealing nothing.
fn host_id(server: &Server) -> String {
    use sha2::{Digest, Sha224};
    match &server.host {
        Some(h) => hex::encode(Sha224::digest(format!("{}{}", server.project_id, h))),
        None => String::new(),
    }
}

pub struct ServerView<'a> {
    pub version: Version,
    pub base: &'a str,
    pub admin: bool,
    /// The floating addresses of the servers being shown.
    pub floating: FloatingAddresses,
}

impl ServerView<'_> {
    pub fn brief(&self, s: &Server) -> Value {
        json!({"id": s.id, "name": s.name, "links": links(self.base, "servers", &s.id)})
    }

    pub fn detail(&self, s: &Server) -> Value {
        let v = self.version;
        let flavor = if v.at_least(47) {
            json!({
                "vcpus": s.flavor.vcpus, "ram": s.flavor.ram, "disk": s.flavor.disk,
                "ephemeral": s.flavor.ephemeral, "swap": s.flavor.swap,
                "original_name": s.flavor.name, "extra_specs": s.flavor.extra_specs,
            })
        } else {
            json!({"id": s.flavor.id, "links": [{"rel": "bookmark", "href": format!("{}/flavors/{}", self.base, s.flavor.id)}]})
        };
        let image = if s.image_id.is_empty() {
            json!("")
        } else {
            json!({"id": s.image_id, "links": [{"rel": "bookmark", "href": format!("{}/images/{}", self.base, s.image_id)}]})
        };
        let mut out = json!({
            "id": s.id,
            "name": s.name,
            "status": states::status(s.vm_state, s.task_state),
            "tenant_id": s.project_id,
            "user_id": s.user_id,
            "metadata": s.metadata,
            "hostId": host_id(s),
            "image": image,
            "flavor": flavor,
            "created": time(s.created_at),
            "updated": time(s.updated_at),
            "addresses": addresses(s, &self.floating),
            "accessIPv4": s.access_ipv4,
            "accessIPv6": s.access_ipv6,
            "links": links(self.base, "servers", &s.id),
            "OS-DCF:diskConfig": "MANUAL",
            "progress": s.progress,
            "OS-EXT-AZ:availability_zone": s.availability_zone,
            "config_drive": if s.config_drive { "True" } else { "" },
            "key_name": s.key_name,
            "OS-SRV-USG:launched_at": s.launched_at.map(time_micro),
            "OS-SRV-USG:terminated_at": Value::Null,
            "OS-EXT-STS:task_state": s.task_state,
            "OS-EXT-STS:vm_state": s.vm_state,
            "OS-EXT-STS:power_state": s.power_state,
            "os-extended-volumes:volumes_attached": volumes_attached(s, v),
            "security_groups": s.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
        });
        if s.vm_state == VmState::Error
            && let Some(f) = &s.fault
        {
            out["fault"] = fault(f, self.admin);
        }
        if self.admin {
            out["OS-EXT-SRV-ATTR:host"] = json!(s.host);
            out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(s.host);
            out["OS-EXT-SRV-ATTR:instance_name"] = json!(s.instance_name);
            if v.at_least(3) {
                out["OS-EXT-SRV-ATTR:reservation_id"] = json!(s.reservation_id);
                out["OS-EXT-SRV-ATTR:launch_index"] = json!(s.launch_index);
                out["OS-EXT-SRV-ATTR:hostname"] = json!(s.hostname);
                out["OS-EXT-SRV-ATTR:kernel_id"] = json!("");
                out["OS-EXT-SRV-ATTR:ramdisk_id"] = json!("");
                out["OS-EXT-SRV-ATTR:root_device_name"] = json!("/dev/vda");
                out["OS-EXT-SRV-ATTR:user_data"] = json!(s.user_data);
            }
        } else if v.at_least(90) {
            out["OS-EXT-SRV-ATTR:hostname"] = json!(s.hostname);
        }
        if v.at_least(9) {
            out["locked"] = json!(s.locked);
        }
        if v.at_least(73) {
            out["locked_reason"] = json!(s.locked_reason);
        }
        if v.at_least(16) {
            out["host_status"] = json!(if s.host.is_some() { "UP" } else { "" });
        }
        if v.at_least(19) {
            out["description"] = json!(s.description);
        }
        if v.at_least(26) {
            out["tags"] = json!(s.tags);
        }
        if v.at_least(63) {
            out["trusted_image_certificates"] = Value::Null;
        }
        if v.at_least(71) {
            out["server_groups"] = json!(s.server_group.iter().collect::<Vec<_>>());
        }
        out
    }
}

/// An aggregate as Nova shows it (`uuid` from 2.41); a create's reply has no `hosts` and
/// no `metadata`, as in Nova.
pub fn aggregate(a: &Aggregate, v: Version, created: bool) -> Value {
    let mut out = json!({
        "id": a.id, "name": a.name, "availability_zone": a.availability_zone(),
        "created_at": time_micro(a.created_at),
        "updated_at": a.updated_at.map(time_micro),
        "deleted": false, "deleted_at": null,
    });
    if !created {
        out["hosts"] = json!(a.hosts);
        out["metadata"] = json!(a.metadata);
    }
    if v.at_least(41) {
        out["uuid"] = json!(a.uuid);
    }
    out
}

pub fn server_group(g: &ServerGroup, v: Version) -> Value {
    let mut out = json!({
        "id": g.id, "name": g.name, "members": g.members, "metadata": {},
    });
    if v.at_least(64) {
        out["policy"] = json!(g.policy);
        out["rules"] = json!(g.rules);
        out.as_object_mut().map(|o| o.remove("metadata"));
    } else {
        out["policies"] = json!([g.policy]);
    }
    if v.at_least(13) {
        out["project_id"] = json!(g.project_id);
        out["user_id"] = json!(g.user_id);
    }
    out
}

pub fn action(a: &InstanceAction, v: Version, with_events: bool, admin: bool) -> Value {
    let mut out = json!({
        "action": a.action, "instance_uuid": a.server_id, "request_id": a.request_id,
        "user_id": a.user_id, "project_id": a.project_id, "start_time": time_micro(a.start_time),
        "message": a.message,
    });
    if v.at_least(58) {
        out["updated_at"] = json!(time_micro(a.updated_at));
    }
    if with_events {
        out["events"] = a
            .events
            .iter()
            .map(|e| {
                let mut ev = json!({
                    "event": e.event, "start_time": time_micro(e.start_time),
                    "finish_time": e.finish_time.map(time_micro), "result": e.result,
                });
                if admin {
                    ev["traceback"] = Value::Null;
                    if v.at_least(62) {
                        ev["host"] = json!(e.host);
                    }
                }
                if v.at_least(62) {
                    ev["hostId"] = json!("");
                }
                if v.at_least(84) {
                    ev["details"] = Value::Null;
                }
                ev
            })
            .collect();
    }
    out
}

/// The volumes in a server's detail: their ids, and from 2.3 whether they go with it.
fn volumes_attached(s: &Server, v: Version) -> Vec<Value> {
    s.volumes
        .iter()
        .map(|a| {
            if v.at_least(3) {
                json!({"id": a.volume_id, "delete_on_termination": a.delete_on_termination})
            } else {
                json!({"id": a.volume_id})
            }
        })
        .collect()
}

/// A volume attachment (`os-volume_attachments`) as Nova shapes it at `v`.
pub fn volume_attachment(server_id: &str, a: &VolumeAttachment, v: Version) -> Value {
    let mut out = json!({
        "device": a.device,
        "serverId": server_id,
        "volumeId": a.volume_id,
    });
    if !v.at_least(89) {
        out["id"] = json!(a.volume_id);
    }
    if v.at_least(70) {
        out["tag"] = json!(a.tag);
    }
    if v.at_least(79) {
        out["delete_on_termination"] = json!(a.delete_on_termination);
    }
    if v.at_least(89) {
        out["attachment_id"] = json!(a.attachment_id);
        out["bdm_uuid"] = json!(a.bdm_id);
    }
    out
}
