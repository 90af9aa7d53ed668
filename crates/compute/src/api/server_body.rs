//! Reading server bodies into the typed input of their operations: a create (with its
//! scheduler hints), an update and an interface attachment, each at the request's
//! microversion. Attributes of later microversions are unknown before them (400).

use onestack_api::Fields;
use serde_json::Value;

use super::input::{check_hostname, check_name, fixed_ip, opt_flag, opt_uint, string_map};
use crate::error::{Error, Result};
use crate::microversion::Version;
use crate::ops::server_input::{
    NetworkChoice, NetworkRequest, NewServer, ServerUpdate, VolumeRequest, VolumeSource,
};

const MAX_USER_DATA: usize = 65535;

/// Attributes of a create that Nova accepts and onestack has no use for.
const IGNORED_ON_CREATE: [&str; 6] = [
    "adminPass",
    "OS-DCF:diskConfig",
    "personality",
    "trusted_image_certificates",
    "host",
    "hypervisor_hostname",
];

/// `POST /servers`: `{"server": {...}, "os:scheduler_hints": {...}}`.
pub(super) fn new_server(mut body: Value, version: Version) -> Result<NewServer> {
    let hints = body.as_object_mut().and_then(|m| {
        m.remove("os:scheduler_hints")
            .or_else(|| m.remove("OS-SCH-HNT:scheduler_hints"))
    });
    let mut f = Fields::from_body(body, "server")?;
    let name = f.opt_string("name")?.ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute server. 'name' is a required property".into(),
        )
    })?;
    check_name(&name, "Server")?;
    let description = if version.at_least(19) {
        f.opt_string_max("description", 255)?
    } else {
        None
    };
    let hostname = if version.at_least(90) {
        f.opt_string("hostname")?
    } else {
        None
    };
    if let Some(h) = &hostname {
        check_hostname(h)?;
    }
    let flavor_ref = f.opt_string("flavorRef")?.ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute server. 'flavorRef' is a required property".into(),
        )
    })?;
    // Image: `imageRef`, or the boot entry of `block_device_mapping_v2`.
    let mut image_ref = f.opt_string("imageRef")?.filter(|s| !s.is_empty());
    let mut blank_disks = Vec::new();
    let mut volumes = Vec::new();
    for bdm in f.opt_array("block_device_mapping_v2")?.unwrap_or_default() {
        match block_device(&bdm, version)? {
            BlockDevice::Image(uuid) => image_ref = Some(uuid),
            BlockDevice::Blank(size) => blank_disks.push(size),
            BlockDevice::Volume(request) => volumes.push(request),
        }
    }
    let boots_from_volume = volumes.iter().any(VolumeRequest::boots);
    if boots_from_volume {
        // The boot volume replaces the image (Nova keeps no image on such a server).
        image_ref = None;
    } else if image_ref.is_none() {
        return Err(Error::BadRequest("Missing imageRef attribute".into()));
    }
    if volumes.iter().filter(|v| v.boots()).count() > 1 {
        return Err(Error::BadRequest(
            "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.".into(),
        ));
    }
    let networks = networks(&mut f, version)?;
    let key_name = f.opt_string("key_name")?;
    let user_data = f.opt_string("user_data")?.map(user_data).transpose()?;
    let metadata = match f.take("metadata") {
        Some(Value::Null) | None => Default::default(),
        Some(v) => string_map(v, "metadata")?,
    };
    let security_groups = f
        .opt_array("security_groups")?
        .map(|list| {
            list.iter()
                .map(|g| {
                    g.get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| Error::BadRequest("Invalid input for field/attribute security_groups: each needs a 'name'.".into()))
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    // `zone`, `zone:host` or `:host`.
    let (zone, forced_host) = match f.opt_string("availability_zone")? {
        Some(z) => match z.split_once(':') {
            Some((zone, host)) => (
                Some(zone.to_owned()).filter(|z| !z.is_empty()),
                Some(host.to_owned()),
            ),
            None => (Some(z), None),
        },
        None => (None, None),
    };
    let config_drive = opt_flag(&mut f, "config_drive")?.unwrap_or(false);
    let min_count = opt_uint(&mut f, "min_count")?;
    let max_count = opt_uint(&mut f, "max_count")?;
    // Other hints are accepted and not used.
    let group = match hints.as_ref().and_then(|h| h.get("group")) {
        Some(Value::String(g)) => Some(g.clone()),
        Some(_) => {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute group.".into(),
            ));
        }
        None => None,
    };
    let tags = if version.at_least(52) {
        f.opt_string_list("tags", 60)?.unwrap_or_default()
    } else {
        Vec::new()
    };
    let access_ipv4 = f.opt_string("accessIPv4")?.unwrap_or_default();
    let access_ipv6 = f.opt_string("accessIPv6")?.unwrap_or_default();
    let return_reservation_id = opt_flag(&mut f, "return_reservation_id")?.unwrap_or(false);
    for ignored in IGNORED_ON_CREATE {
        f.ignore(ignored);
    }
    f.deny_unknown()?;
    Ok(NewServer {
        name,
        description,
        hostname,
        flavor_ref,
        image_ref,
        volumes,
        blank_disks,
        networks,
        key_name,
        user_data,
        metadata,
        security_groups,
        zone,
        forced_host,
        config_drive,
        min_count,
        max_count,
        group,
        tags,
        access_ipv4,
        access_ipv6,
        return_reservation_id,
    })
}

/// An entry of `block_device_mapping_v2`.
enum BlockDevice {
    /// The boot image (`image` → `local`, boot index 0).
    Image(String),
    /// A blank local disk of this size, or the flavor's ephemeral size.
    Blank(Option<u64>),
    /// A volume (destination `volume`): attached, or made and attached.
    Volume(VolumeRequest),
}

fn block_device(bdm: &Value, version: Version) -> Result<BlockDevice> {
    let invalid = |why: &str| Error::BadRequest(format!("Block Device Mapping is Invalid: {why}"));
    // Nova takes numbers and booleans as strings too; what is neither counts as not given.
    let text = |key: &str| bdm.get(key).and_then(Value::as_str);
    let number = |key: &str| {
        bdm.get(key)
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
    };
    let (source, dest, uuid, boot_index) = (
        text("source_type").unwrap_or(""),
        text("destination_type").unwrap_or("local"),
        text("uuid"),
        number("boot_index"),
    );
    let size = match number("volume_size") {
        Some(s) if s < 0 => return Err(invalid("volume_size must not be negative.")),
        other => other.map(|s| s as u64),
    };
    match (source, dest) {
        ("image", "local") if boot_index == Some(0) => {
            let uuid = uuid.ok_or_else(|| invalid("an image entry needs a uuid."))?;
            Ok(BlockDevice::Image(uuid.to_owned()))
        }
        ("blank", "local") => Ok(BlockDevice::Blank(size)),
        (source @ ("volume" | "image" | "snapshot" | "blank"), "volume") => {
            let id = || {
                uuid.map(str::to_owned)
                    .ok_or_else(|| invalid(&format!("a {source} entry needs a uuid.")))
            };
            let source = match source {
                "volume" => VolumeSource::Existing(id()?),
                "image" => VolumeSource::Image(id()?),
                "snapshot" => VolumeSource::Snapshot(id()?),
                _ => VolumeSource::Blank,
            };
            let new = !matches!(source, VolumeSource::Existing(_));
            if new
                && matches!(source, VolumeSource::Image(_) | VolumeSource::Blank)
                && size.unwrap_or(0) == 0
            {
                return Err(invalid(
                    "Images and blank volumes with destination_type 'volume' need to have a non-zero size specified.",
                ));
            }
            let flag = |key: &str| match bdm.get(key) {
                Some(Value::Bool(b)) => Ok(*b),
                Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" | "" => Ok(false),
                    _ => Err(invalid(&format!("{key} is not a boolean."))),
                },
                None | Some(Value::Null) => Ok(false),
                Some(_) => Err(invalid(&format!("{key} is not a boolean."))),
            };
            let tag = if version.at_least(42) {
                text("tag").map(str::to_owned)
            } else {
                None
            };
            let volume_type = if version.at_least(67) {
                text("volume_type").map(str::to_owned)
            } else {
                None
            };
            Ok(BlockDevice::Volume(VolumeRequest {
                source,
                size,
                boot_index,
                delete_on_termination: flag("delete_on_termination")?,
                tag,
                volume_type,
            }))
        }
        _ => Err(invalid(&format!(
            "source_type '{source}' with destination_type '{dest}' is not supported."
        ))),
    }
}

/// `networks`: `none`, `auto`, or a list of ports and networks; required from 2.37.
fn networks(f: &mut Fields, version: Version) -> Result<NetworkChoice> {
    match f.take("networks") {
        Some(Value::String(s)) if s == "none" => Ok(NetworkChoice::None),
        None if version.at_least(37) => Err(Error::BadRequest(
            "Invalid input for field/attribute networks. 'networks' is a required property".into(),
        )),
        Some(Value::String(s)) if s == "auto" => Ok(NetworkChoice::Auto),
        None | Some(Value::Null) => Ok(NetworkChoice::Unspecified),
        Some(Value::Array(list)) => list
            .iter()
            .map(network_entry)
            .collect::<Result<_>>()
            .map(NetworkChoice::Listed),
        Some(_) => Err(Error::BadRequest(
            "Bad networks format: 'networks' must be a list, 'auto' or 'none'.".into(),
        )),
    }
}

/// One entry of `networks`: a `port`, or a network (`uuid`) with a `fixed_ip` or not.
fn network_entry(entry: &Value) -> Result<NetworkRequest> {
    let text = |key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let fixed_ip = entry
        .get("fixed_ip")
        .and_then(Value::as_str)
        .map(fixed_ip)
        .transpose()?;
    match (text("port"), text("uuid")) {
        (Some(port), _) => Ok(NetworkRequest::Port(port.to_owned())),
        (None, Some(network)) => Ok(NetworkRequest::Network {
            id: network.to_owned(),
            fixed_ip,
        }),
        _ => Err(Error::BadRequest(
            "Bad networks format: each network needs a 'uuid' or a 'port'.".into(),
        )),
    }
}

/// `user_data`: base64 of at most 64 KiB, kept as given (trimmed).
fn user_data(text: String) -> Result<String> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let decoded = STANDARD
        .decode(text.trim())
        .map_err(|_| Error::BadRequest("User data needs to be valid base 64.".into()))?;
    if decoded.len() > MAX_USER_DATA {
        return Err(Error::BadRequest(format!(
            "User data too large. User data must be no larger than {MAX_USER_DATA} bytes once base64 encoded."
        )));
    }
    Ok(text.trim().to_owned())
}

/// `PUT /servers/{id}`.
pub(super) fn server_update(body: Value, version: Version) -> Result<ServerUpdate> {
    let mut f = Fields::from_body(body, "server")?;
    let name = f.opt_string("name")?;
    if let Some(name) = &name {
        check_name(name, "Server")?;
    }
    let description = if version.at_least(19) && f.contains("description") {
        Some(f.opt_string_max("description", 255)?)
    } else {
        None
    };
    let hostname = if version.at_least(90) {
        f.opt_string("hostname")?
    } else {
        None
    };
    if let Some(h) = &hostname {
        check_hostname(h)?;
    }
    let change = ServerUpdate {
        name,
        description,
        hostname,
        access_ipv4: f.opt_string("accessIPv4")?,
        access_ipv6: f.opt_string("accessIPv6")?,
    };
    f.ignore("OS-DCF:diskConfig");
    f.deny_unknown()?;
    Ok(change)
}

/// `POST /servers/{id}/os-interface`: a `port_id`, or a `net_id` with the first address of
/// `fixed_ips` or none.
pub(super) fn interface(body: Value) -> Result<NetworkRequest> {
    let mut f = Fields::from_body(body, "interfaceAttachment")?;
    let port_id = f.opt_string("port_id")?;
    let net_id = f.opt_string("net_id")?;
    let fixed_ip = match f.opt_array("fixed_ips")? {
        Some(list) => list
            .first()
            .and_then(|e| e.get("ip_address"))
            .and_then(Value::as_str)
            .map(fixed_ip)
            .transpose()?,
        None => None,
    };
    f.ignore("tag");
    f.deny_unknown()?;
    match (port_id, net_id) {
        (Some(port), None) => Ok(NetworkRequest::Port(port)),
        (None, Some(network)) => Ok(NetworkRequest::Network {
            id: network,
            fixed_ip,
        }),
        _ => Err(Error::BadRequest(
            "Must not input both network_id and port_id, and one of them is required.".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn at(minor: u16) -> Version {
        Version(minor)
    }

    fn base() -> Value {
        json!({"name": "vm", "imageRef": "img", "flavorRef": "1", "networks": "none"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut server = base();
        server[key] = value;
        json!({ "server": server })
    }

    #[test]
    fn a_create_reads_every_attribute() {
        let body = json!({"server": {
            "name": "vm", "flavorRef": "http://x/flavors/2", "imageRef": "",
            "block_device_mapping_v2": [
                {"source_type": "image", "destination_type": "local", "boot_index": "0", "uuid": "img"},
                {"source_type": "blank", "destination_type": "local", "volume_size": "2"},
                {"source_type": "blank"}],
            "networks": [{"port": "p1"}, {"uuid": "n1", "fixed_ip": "10.0.0.5"}],
            "availability_zone": ":host-1", "min_count": "2", "config_drive": "yes",
            "metadata": {"k": "v"}, "security_groups": [{"name": "web"}],
            "user_data": " aGk= ", "tags": ["t"], "adminPass": "ignored"},
            "os:scheduler_hints": {"group": "g1", "other": 1}});
        let new = new_server(body, at(52)).unwrap();
        assert_eq!(new.image_ref.as_deref(), Some("img"));
        assert!(new.volumes.is_empty());
        assert_eq!(new.blank_disks, vec![Some(2), None]);
        assert!(matches!(&new.networks, NetworkChoice::Listed(l) if l.len() == 2));
        assert_eq!(
            (new.zone.as_deref(), new.forced_host.as_deref()),
            (None, Some("host-1"))
        );
        assert_eq!((new.min_count, new.max_count), (Some(2), None));
        assert!(new.config_drive);
        assert_eq!(new.user_data.as_deref(), Some("aGk="));
        assert_eq!(new.security_groups, Some(vec!["web".to_owned()]));
        assert_eq!(new.group.as_deref(), Some("g1"));
        assert_eq!(new.tags, vec!["t"]);
    }

    #[test]
    fn attributes_of_later_microversions_are_unknown_before_them() {
        for (key, value, minor) in [
            ("description", json!("d"), 19),
            ("hostname", json!("h"), 90),
            ("tags", json!(["t"]), 52),
        ] {
            assert!(new_server(with(key, value.clone()), at(minor - 1)).is_err());
            assert!(new_server(with(key, value), at(minor)).is_ok(), "{key}");
        }
        let mut body = with("name", json!("vm"));
        body["server"].as_object_mut().unwrap().remove("networks");
        assert!(matches!(
            new_server(body.clone(), at(36)).unwrap().networks,
            NetworkChoice::Unspecified
        ));
        assert!(
            new_server(body, at(37)).is_err(),
            "networks are required from 2.37"
        );
    }

    #[test]
    fn malformed_creates_are_refused() {
        for body in [
            with("name", json!(" padded ")),
            with("networks", json!([{"fixed_ip": "10.0.0.1"}])),
            with("networks", json!([{"uuid": "n", "fixed_ip": "nope"}])),
            with("networks", json!("some")),
            with("user_data", json!("not base64!")),
            with("metadata", json!({"k": 1})),
            with("security_groups", json!([{"id": "x"}])),
            with(
                "block_device_mapping_v2",
                json!([{"source_type": "volume"}]),
            ),
            with("imageRef", json!("")),
            with("bogus", json!(1)),
            json!({"server": base(), "os:scheduler_hints": {"group": 5}}),
        ] {
            assert!(new_server(body.clone(), at(1)).is_err(), "{body}");
        }
    }

    #[test]
    fn an_attachment_names_a_port_or_a_network() {
        let port = interface(json!({"interfaceAttachment": {"port_id": "p"}})).unwrap();
        assert!(matches!(port, NetworkRequest::Port(p) if p == "p"));
        let net = interface(json!({"interfaceAttachment": {"net_id": "n",
            "fixed_ips": [{"ip_address": "10.0.0.9"}], "tag": "x"}}))
        .unwrap();
        assert!(matches!(
            net,
            NetworkRequest::Network {
                fixed_ip: Some(_),
                ..
            }
        ));
        assert!(
            interface(json!({"interfaceAttachment": {"port_id": "p", "net_id": "n"}})).is_err()
        );
        assert!(interface(json!({"interfaceAttachment": {}})).is_err());
    }

    #[test]
    fn an_update_clears_the_description_with_null() {
        let change = server_update(json!({"server": {"description": null}}), at(19)).unwrap();
        assert_eq!(change.description, Some(None));
        assert!(server_update(json!({"server": {"description": null}}), at(18)).is_err());
        assert!(server_update(json!({"server": {"hostname": "-x"}}), at(90)).is_err());
    }
}
