//! The metadata service's paths, laid out as Nova serves them: the EC2 versions and
//! `openstack` at the root, `/openstack/<version>/{meta_data.json,…}`, and the EC2 tree
//! `/<version>/meta-data/…` (one value or listing per path) and `/<version>/user-data`.
//! Every listed version answers with today's content, as Nova's do for the fields they share.

use serde_json::Value;

use super::{GuestNetworking, ec2_meta_data, meta_data, network_data};
use crate::model::Server;

/// The OpenStack tree's versions, oldest first (Nova's list); `latest` follows them.
pub const OPENSTACK_VERSIONS: &[&str] = &[
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
];

/// The EC2 tree's versions (Nova's list).
pub const EC2_VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
];

/// What a path holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

impl Found {
    fn text(body: impl Into<String>) -> Self {
        Self {
            body: body.into().into_bytes(),
            content_type: "text/plain; charset=UTF-8",
        }
    }

    fn json(value: &Value) -> Self {
        Self {
            body: value.to_string().into_bytes(),
            content_type: "application/json",
        }
    }

    fn listing<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        let lines: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
        Self::text(lines.join("\n"))
    }
}

fn known(version: &str, versions: &[&str]) -> bool {
    version == "latest" || versions.contains(&version)
}

/// Whether `version` has what appeared in `since` (dates compare as strings).
fn at_least(version: &str, since: &str) -> bool {
    version == "latest" || version >= since
}

/// The answer for `path` (the request's path, query excluded), or `None` for a 404.
pub fn lookup(server: &Server, net: &GuestNetworking, path: &str) -> Option<Found> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return None;
    }
    let user_data = super::user_data(server);
    match parts.as_slice() {
        [] => Some(Found::listing(
            EC2_VERSIONS.iter().copied().chain(["latest"]),
        )),
        ["openstack"] => Some(Found::listing(
            OPENSTACK_VERSIONS.iter().copied().chain(["latest"]),
        )),
        ["openstack", version, rest @ ..] if known(version, OPENSTACK_VERSIONS) => {
            openstack(server, net, version, rest, user_data)
        }
        [version, rest @ ..] if known(version, EC2_VERSIONS) => match rest {
            [] => {
                let mut items = vec!["meta-data/"];
                if user_data.is_some() {
                    items.push("user-data");
                }
                Some(Found::listing(items))
            }
            ["user-data"] => user_data.map(|body| Found {
                body,
                content_type: "application/octet-stream",
            }),
            ["meta-data", keys @ ..] => ec2(server, &ec2_meta_data(server, net), keys),
            _ => None,
        },
        _ => None,
    }
}

fn openstack(
    server: &Server,
    net: &GuestNetworking,
    version: &str,
    rest: &[&str],
    user_data: Option<Vec<u8>>,
) -> Option<Found> {
    let has_network_data = at_least(version, "2015-10-15");
    let has_vendor_data2 = at_least(version, "2016-10-06");
    match rest {
        [] => {
            let mut items = vec!["meta_data.json", "password", "vendor_data.json"];
            if has_network_data {
                items.push("network_data.json");
            }
            if has_vendor_data2 {
                items.push("vendor_data2.json");
            }
            if user_data.is_some() {
                items.push("user_data");
            }
            Some(Found::listing(items))
        }
        ["meta_data.json"] => Some(Found::json(&meta_data(server))),
        ["network_data.json"] if has_network_data => Some(Found::json(&network_data(net))),
        ["vendor_data.json"] => Some(Found::json(&Value::Object(Default::default()))),
        ["vendor_data2.json"] if has_vendor_data2 => {
            Some(Found::json(&Value::Object(Default::default())))
        }
        // No password was ever posted by this guest: Nova answers an empty body.
        ["password"] => Some(Found::text("")),
        ["user_data"] => user_data.map(|body| Found {
            body,
            content_type: "application/octet-stream",
        }),
        _ => None,
    }
}

/// One node of the EC2 `meta-data` tree: a value, or a listing of a map's keys (maps
/// marked with a trailing `/`; a public key listed as `0=<key name>`, as Nova does).
fn ec2(server: &Server, root: &Value, keys: &[&str]) -> Option<Found> {
    let mut node = root;
    for key in keys {
        node = node.as_object()?.get(*key)?;
    }
    let in_public_keys = keys == ["public-keys"];
    Some(match node {
        Value::Object(map) => Found::listing(map.iter().map(|(k, v)| match v {
            _ if in_public_keys => match &server.key_name {
                Some(name) => format!("{k}={name}"),
                None => k.clone(),
            },
            Value::Object(_) => format!("{k}/"),
            _ => k.clone(),
        })),
        Value::Array(items) => Found::listing(items.iter().map(scalar)),
        other => Found::text(scalar(other)),
    })
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        let mut s: Server = serde_json::from_value(serde_json::json!({
            "id": "4f0e8a9c-1111-4222-8333-444455556666", "project_id": "p1", "user_id": "u1",
            "name": "vm1", "hostname": "vm1", "instance_name": "instance-00000001",
            "reservation_id": "r-1", "launch_index": 0, "image_id": "",
            "flavor": {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1,
                       "ephemeral": 0, "swap": 0, "extra_specs": {}},
            "metadata": {}, "tags": [], "security_groups": [], "availability_zone": "nova",
            "nics": [], "vm_state": "active", "power_state": 1, "config_drive": false,
            "locked": false, "access_ipv4": "", "access_ipv6": "", "progress": 0,
            "created_at": 0, "updated_at": 0,
        }))
        .unwrap_or_else(|e| panic!("server: {e}"));
        s.key_name = Some("mykey".into());
        s.key_data = Some("ssh-ed25519 AAAA test".into());
        s.user_data = Some("IyEvYmluL3NoCmVjaG8gaGkK".into());
        s.security_groups = vec!["default".into(), "web".into()];
        s
    }

    fn get(path: &str) -> Option<String> {
        lookup(&server(), &GuestNetworking::default(), path)
            .map(|f| String::from_utf8_lossy(&f.body).into_owned())
    }

    #[test]
    fn root_and_openstack_listings() {
        let root = get("/").expect("root");
        assert!(root.starts_with("1.0\n2007-01-19\n"), "{root}");
        assert!(root.ends_with("2009-04-04\nlatest"), "{root}");
        assert!(
            get("/openstack")
                .expect("os")
                .ends_with("2020-10-14\nlatest")
        );
        assert_eq!(
            get("/openstack/latest/").as_deref(),
            Some(
                "meta_data.json\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json\nuser_data"
            )
        );
        assert_eq!(
            get("/openstack/2012-08-10").as_deref(),
            Some("meta_data.json\npassword\nvendor_data.json\nuser_data")
        );
        assert_eq!(get("/openstack/2012-08-10/network_data.json"), None);
        assert_eq!(get("/openstack/2011-01-01/meta_data.json"), None);
    }

    #[test]
    fn openstack_files() {
        let meta: Value =
            serde_json::from_str(&get("/openstack/latest/meta_data.json").expect("meta"))
                .expect("json");
        assert_eq!(meta["hostname"], "vm1");
        assert_eq!(meta["public_keys"]["mykey"], "ssh-ed25519 AAAA test");
        assert_eq!(
            get("/openstack/2018-08-27/user_data").as_deref(),
            Some("#!/bin/sh\necho hi\n")
        );
        assert_eq!(get("/openstack/latest/password").as_deref(), Some(""));
        assert_eq!(
            get("/openstack/latest/vendor_data2.json").as_deref(),
            Some("{}")
        );
        assert_eq!(get("/openstack/latest/nothing"), None);
        assert_eq!(get("/openstack/latest/../../etc/passwd"), None);
    }

    #[test]
    fn ec2_tree() {
        assert_eq!(get("/2009-04-04").as_deref(), Some("meta-data/\nuser-data"));
        let keys = get("/latest/meta-data/").expect("keys");
        for k in [
            "hostname",
            "instance-id",
            "local-ipv4",
            "placement/",
            "public-keys/",
        ] {
            assert!(keys.lines().any(|l| l == k), "{k} in {keys}");
        }
        assert_eq!(get("/latest/meta-data/hostname").as_deref(), Some("vm1"));
        assert_eq!(
            get("/2009-04-04/meta-data/public-keys/").as_deref(),
            Some("0=mykey")
        );
        assert_eq!(
            get("/latest/meta-data/public-keys/0/").as_deref(),
            Some("openssh-key")
        );
        assert_eq!(
            get("/latest/meta-data/public-keys/0/openssh-key").as_deref(),
            Some("ssh-ed25519 AAAA test")
        );
        assert_eq!(
            get("/latest/meta-data/security-groups").as_deref(),
            Some("default\nweb")
        );
        assert_eq!(
            get("/latest/meta-data/placement/availability-zone").as_deref(),
            Some("nova")
        );
        assert_eq!(
            get("/latest/user-data").as_deref(),
            Some("#!/bin/sh\necho hi\n")
        );
        assert_eq!(get("/latest/meta-data/nothing"), None);
        assert_eq!(get("/2010-01-01/meta-data/"), None);
    }

    #[test]
    fn no_user_data_is_a_404() {
        let mut s = server();
        s.user_data = None;
        let net = GuestNetworking::default();
        assert!(lookup(&s, &net, "/latest/user-data").is_none());
        assert!(lookup(&s, &net, "/openstack/latest/user_data").is_none());
        let listing = lookup(&s, &net, "/latest").expect("listing");
        assert_eq!(listing.body, b"meta-data/");
    }
}
