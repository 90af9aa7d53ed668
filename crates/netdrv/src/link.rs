//! Links: bridges, VXLAN and VLAN devices, taps, veth pairs, and enslaving them to bridges.
//! Every `ensure_*` is idempotent: it creates what is missing, fixes what differs, and
//! leaves the device administratively up.

use std::net::IpAddr;

use serde_json::Value;
use tokio::sync::OnceCell;

use crate::cmd;
use crate::error::{Error, Result};
use crate::names;
use crate::owner::Owner;

/// The IANA VXLAN port; every VXLAN device we create uses it.
pub const VXLAN_PORT: u16 = 4789;

/// One link as `ip -j -d link show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub name: String,
    /// `bridge`, `vxlan`, `vlan`, `tun`, `veth`, ...; `None` for plain hardware devices.
    pub kind: Option<String>,
    pub master: Option<String>,
    pub mtu: u32,
    /// Administratively up (the `UP` flag), whatever the carrier.
    pub up: bool,
    /// The VXLAN network identifier, for `vxlan` links.
    pub vni: Option<u32>,
    /// The VLAN id, for `vlan` links.
    pub vlan_id: Option<u16>,
    /// The lower device (a VLAN's parent, a veth's peer) when it is in the same namespace.
    pub link: Option<String>,
    /// The interface alias: an [`Owner`] mark on the devices we made.
    pub alias: Option<String>,
}

impl LinkInfo {
    fn from_json(v: &Value) -> Option<Self> {
        let info = v.get("linkinfo");
        let kind = info
            .and_then(|i| i.get("info_kind"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let data_id = info
            .and_then(|i| i.get("info_data"))
            .and_then(|d| d.get("id"))
            .and_then(Value::as_u64);
        let is = |k: &str| kind.as_deref() == Some(k);
        Some(Self {
            name: v.get("ifname")?.as_str()?.to_owned(),
            master: str_field(v, "master"),
            mtu: v.get("mtu").and_then(Value::as_u64).unwrap_or(0) as u32,
            up: v
                .get("flags")
                .and_then(Value::as_array)
                .is_some_and(|f| f.iter().any(|f| f.as_str() == Some("UP"))),
            vni: data_id
                .filter(|_| is("vxlan"))
                .and_then(|i| u32::try_from(i).ok()),
            vlan_id: data_id
                .filter(|_| is("vlan"))
                .and_then(|i| u16::try_from(i).ok()),
            link: str_field(v, "link"),
            alias: str_field(v, "ifalias"),
            kind,
        })
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn info_data<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get("linkinfo")?.get("info_data")?.get(key)
}

fn is_missing(e: &Error) -> bool {
    e.stderr_contains("does not exist")
        || e.stderr_contains("Cannot find device")
        || e.stderr_contains("No such device")
}

fn is_exists(e: &Error) -> bool {
    e.stderr_contains("File exists") || e.stderr_contains("Device or resource busy")
}

fn check_name(name: &str) -> Result<()> {
    if names::is_safe_ifname(name) {
        Ok(())
    } else {
        Err(Error::invalid("interface name", name))
    }
}

/// The links `owner` made: one of our prefixes and its mark. Another cloud's devices, and
/// unmarked ones, are not in the list, so nothing that uses it can remove them.
pub async fn list_ours(owner: &Owner) -> Result<Vec<LinkInfo>> {
    Ok(list_prefixed()
        .await?
        .into_iter()
        .filter(|l| owner.owns(l.alias.as_deref()))
        .collect())
}

/// All links whose names carry one of our prefixes, whoever made them.
pub async fn list_prefixed() -> Result<Vec<LinkInfo>> {
    let out = cmd::run("ip", &["-j", "-d", "link", "show"]).await?;
    let all = cmd::parse_json("ip", &out)?;
    Ok(all
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(LinkInfo::from_json)
        .filter(|l| names::is_ours(&l.name))
        .collect())
}

async fn get_raw(name: &str) -> Result<Option<Value>> {
    check_name(name)?;
    match cmd::run("ip", &["-j", "-d", "link", "show", "dev", name]).await {
        Ok(out) => Ok(cmd::parse_json("ip", &out)?
            .as_array()
            .and_then(|a| a.first())
            .cloned()),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One link by name, `None` if it does not exist.
pub async fn get(name: &str) -> Result<Option<LinkInfo>> {
    Ok(get_raw(name).await?.as_ref().and_then(LinkInfo::from_json))
}

/// The link called `name` as `ip -j -d` shows it, unless it carries another cloud's mark:
/// such a device is never changed, recreated or adopted.
async fn existing(name: &str, owner: &Owner) -> Result<Option<Value>> {
    let raw = get_raw(name).await?;
    if let Some(alias) = raw
        .as_ref()
        .and_then(|r| r.get("ifalias"))
        .and_then(Value::as_str)
        && owner.is_foreign(Some(alias))
    {
        return Err(Error::invalid(
            "link of another cloud",
            format!("{name} is marked {alias:?}"),
        ));
    }
    Ok(raw)
}

/// Runs an `ip link add ...`; a concurrent creator winning the race is not an error.
async fn add(args: &[String]) -> Result<()> {
    match cmd::run("ip", args).await {
        Err(e) if is_exists(&e) => Ok(()),
        other => other.map(drop),
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// Marks `name` as `owner`'s and brings it up and to `mtu` when any of these differs.
async fn converge(name: &str, mtu: u32, owner: &Owner) -> Result<()> {
    let Some(info) = get(name).await? else {
        return Err(Error::invalid("link vanished while being set up", name));
    };
    claim(&info, owner).await?;
    if mtu != 0 && info.mtu != mtu {
        set_mtu(name, mtu).await?;
    }
    if !info.up {
        set_up(name).await?;
    }
    Ok(())
}

/// Puts `owner`'s mark on a link that has none (one we just made, or one an earlier
/// version made); refuses a link another cloud marked.
async fn claim(info: &LinkInfo, owner: &Owner) -> Result<()> {
    let alias = info.alias.as_deref();
    if owner.owns(alias) {
        return Ok(());
    }
    if owner.is_foreign(alias) {
        return Err(Error::invalid(
            "link of another cloud",
            format!("{} is marked {:?}", info.name, alias.unwrap_or_default()),
        ));
    }
    mark(&info.name, owner).await
}

/// Sets `owner`'s mark as the alias of `name`.
pub async fn mark(name: &str, owner: &Owner) -> Result<()> {
    check_name(name)?;
    cmd::run("ip", &["link", "set", "dev", name, "alias", owner.mark()])
        .await
        .map(drop)
}

/// Fails when an existing link of that name is of another kind: we never repurpose a
/// device we may not own.
fn expect_kind(name: &str, raw: &Value, kind: &str) -> Result<()> {
    let found = raw
        .get("linkinfo")
        .and_then(|i| i.get("info_kind"))
        .and_then(Value::as_str);
    if found == Some(kind) {
        Ok(())
    } else {
        Err(Error::invalid(
            "existing link of another kind",
            format!("{name} is {}, wanted {kind}", found.unwrap_or("hardware")),
        ))
    }
}

/// A bridge without STP and with forward delay 0, so ports forward as soon as they join.
pub async fn ensure_bridge(name: &str, mtu: u32, owner: &Owner) -> Result<()> {
    let opts = ["stp_state", "0", "forward_delay", "0"];
    match existing(name, owner).await? {
        None => {
            let mut args = strings(&["link", "add", "name", name, "type", "bridge"]);
            args.extend(strings(&opts));
            add(&args).await?;
        }
        Some(raw) => {
            expect_kind(name, &raw, "bridge")?;
            let num = |k| info_data(&raw, k).and_then(Value::as_u64);
            if num("stp_state") != Some(0) || num("forward_delay") != Some(0) {
                let mut args = strings(&["link", "set", "dev", name, "type", "bridge"]);
                args.extend(strings(&opts));
                cmd::run("ip", &args).await?;
            }
        }
    }
    converge(name, mtu, owner).await
}

/// A VXLAN device with fixed remotes (no multicast group, no learning: the FDB is
/// programmed by [`crate::fdb`]). An existing device with another VNI, local address,
/// port or learning setting is recreated (and so loses its bridge: attach it again).
pub async fn ensure_vxlan(
    name: &str,
    vni: u32,
    local: Option<IpAddr>,
    mtu: u32,
    owner: &Owner,
) -> Result<()> {
    if let Some(raw) = existing(name, owner).await? {
        expect_kind(name, &raw, "vxlan")?;
        let data = |k| info_data(&raw, k);
        let same = data("id").and_then(Value::as_u64) == Some(u64::from(vni))
            && data("port").and_then(Value::as_u64) == Some(u64::from(VXLAN_PORT))
            && data("learning").and_then(Value::as_bool) == Some(false)
            && data("local")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
                == local;
        if !same {
            tracing::info!(name, vni, "recreating vxlan device with changed settings");
            delete(name).await?;
        }
    }
    if get_raw(name).await?.is_none() {
        let mut args = strings(&["link", "add", "name", name, "type", "vxlan"]);
        args.extend([
            "id".into(),
            vni.to_string(),
            "dstport".into(),
            VXLAN_PORT.to_string(),
            "nolearning".into(),
        ]);
        if let Some(ip) = local {
            args.extend(["local".into(), ip.to_string()]);
        }
        add(&args).await.map_err(|e| {
            if e.stderr_contains("VNI already exists") {
                Error::invalid(
                    "VNI, taken by another VXLAN device on this host (another cloud? give each \
                     cloud its own [network] vni_min..vni_max or local_ip)",
                    vni.to_string(),
                )
            } else {
                e
            }
        })?;
    }
    converge(name, mtu, owner).await
}

/// An 802.1Q sub-interface `name` of `parent` with `vid`; recreated when the parent or id
/// differs. Needs the kernel's 8021q support (see [`vlan_supported`]).
pub async fn ensure_vlan(
    name: &str,
    parent: &str,
    vid: u16,
    mtu: u32,
    owner: &Owner,
) -> Result<()> {
    check_name(parent)?;
    if !(1..=4094).contains(&vid) {
        return Err(Error::invalid("vlan id", vid.to_string()));
    }
    if let Some(raw) = existing(name, owner).await? {
        expect_kind(name, &raw, "vlan")?;
        let info = LinkInfo::from_json(&raw);
        let same = info
            .as_ref()
            .is_some_and(|i| i.vlan_id == Some(vid) && i.link.as_deref() == Some(parent));
        if !same {
            delete(name).await?;
        }
    }
    if get_raw(name).await?.is_none() {
        let vid = vid.to_string();
        add(&strings(&[
            "link", "add", "link", parent, "name", name, "type", "vlan", "id", &vid,
        ]))
        .await?;
    }
    converge(name, mtu, owner).await
}

/// A persistent tap device; QEMU opens it later by name (`ifname=NAME`, single queue).
pub async fn ensure_tap(name: &str, mtu: u32, owner: &Owner) -> Result<()> {
    match existing(name, owner).await? {
        None => add(&strings(&["tuntap", "add", "dev", name, "mode", "tap"])).await?,
        Some(raw) => {
            expect_kind(name, &raw, "tun")?;
            if info_data(&raw, "type").and_then(Value::as_str) != Some("tap") {
                return Err(Error::invalid("existing tun device is not a tap", name));
            }
        }
    }
    converge(name, mtu, owner).await
}

/// A veth pair; `name` is brought up, `peer` is left for the caller (it is usually moved
/// into a namespace).
pub async fn ensure_veth(name: &str, peer: &str, mtu: u32, owner: &Owner) -> Result<()> {
    check_name(peer)?;
    match existing(name, owner).await? {
        None => {
            let mtu_s = mtu.to_string();
            let mut args = strings(&["link", "add", "name", name]);
            if mtu != 0 {
                args.extend(strings(&["mtu", &mtu_s]));
            }
            args.extend(strings(&["type", "veth", "peer", "name", peer]));
            if mtu != 0 {
                args.extend(strings(&["mtu", &mtu_s]));
            }
            add(&args).await?;
            // The peer is ours too, wherever the caller moves it (the alias moves along).
            mark(peer, owner).await?;
        }
        Some(raw) => expect_kind(name, &raw, "veth")?,
    }
    converge(name, mtu, owner).await
}

/// Enslaves `name` (one of our devices or a host interface such as a provider network's
/// `eth1`) to `bridge` and brings it up.
/// A device another cloud's bridge holds (a shared uplink) is refused, not taken over.
pub async fn attach(name: &str, bridge: &str, owner: &Owner) -> Result<()> {
    check_name(bridge)?;
    let Some(info) = get(name).await? else {
        return Err(Error::invalid("no such link to attach", name));
    };
    if let Some(master) = info.master.as_deref()
        && master != bridge
        && let Some(current) = get(master).await?
        && owner.is_foreign(current.alias.as_deref())
    {
        return Err(Error::invalid(
            "device enslaved to another cloud's bridge",
            format!("{name} is in {master}"),
        ));
    }
    if info.master.as_deref() != Some(bridge) {
        cmd::run("ip", &["link", "set", "dev", name, "master", bridge]).await?;
    }
    if !info.up {
        set_up(name).await?;
    }
    Ok(())
}

pub async fn set_up(name: &str) -> Result<()> {
    check_name(name)?;
    cmd::run("ip", &["link", "set", "dev", name, "up"])
        .await
        .map(drop)
}

pub async fn set_mtu(name: &str, mtu: u32) -> Result<()> {
    check_name(name)?;
    let mtu = mtu.to_string();
    cmd::run("ip", &["link", "set", "dev", name, "mtu", &mtu])
        .await
        .map(drop)
}

/// Deletes a link; a missing link is fine. Deleting one end of a veth removes both.
pub async fn delete(name: &str) -> Result<()> {
    check_name(name)?;
    match cmd::run("ip", &["link", "del", "dev", name]).await {
        Err(e) if is_missing(&e) => Ok(()),
        other => other.map(drop),
    }
}

/// Whether this kernel can create VLAN sub-interfaces (8021q), probed once per process on
/// a throw-away bridge (dummy devices may be missing too).
pub async fn vlan_supported() -> bool {
    static PROBE: OnceCell<bool> = OnceCell::const_new();
    *PROBE.get_or_init(probe_vlan).await
}

async fn probe_vlan() -> bool {
    // 6 digits keep "osprobe-NNNNNNv" within 15 bytes.
    let parent = format!("{}{}", names::PROBE, std::process::id() % 1_000_000);
    let child = format!("{parent}v");
    if let Err(e) = cmd::run("ip", &["link", "add", "name", &parent, "type", "bridge"]).await {
        tracing::warn!(error = %e, "vlan probe: cannot create the probe parent");
        return false;
    }
    let ok = cmd::run(
        "ip",
        &[
            "link", "add", "link", &parent, "name", &child, "type", "vlan", "id", "2",
        ],
    )
    .await
    .is_ok();
    if let Err(e) = delete(&parent).await {
        tracing::warn!(error = %e, "vlan probe: cleanup failed");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_json() {
        let v: Value = serde_json::from_str(
            r#"{"ifname":"osvx-y","master":"osbr-y","mtu":1450,"flags":["BROADCAST","UP"],
            "linkinfo":{"info_kind":"vxlan","info_data":{"id":42,"port":4789,"learning":false}}}"#,
        )
        .expect("json");
        let info = LinkInfo::from_json(&v).expect("link");
        assert_eq!(info.kind.as_deref(), Some("vxlan"));
        assert_eq!(info.master.as_deref(), Some("osbr-y"));
        assert_eq!(
            (info.mtu, info.up, info.vni, info.vlan_id),
            (1450, true, Some(42), None)
        );
    }
}
