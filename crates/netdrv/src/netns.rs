//! Named network namespaces (`/run/netns/NAME`, as `ip netns` manages them).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ipnet::IpNet;
use serde_json::Value;

use crate::cmd;
use crate::error::{Error, Result};
use crate::names;
use crate::owner::Owner;

const NETNS_DIR: &str = "/run/netns";

fn check(ns: &str) -> Result<()> {
    let ok = !ns.is_empty()
        && ns.len() <= 100
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !ns.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("namespace name", ns))
    }
}

pub fn exists(ns: &str) -> bool {
    check(ns).is_ok() && Path::new(NETNS_DIR).join(ns).exists()
}

/// Namespaces whose names carry one of our prefixes, whoever made them: ask
/// [`owned_by`] before removing one.
pub fn list_prefixed() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(NETNS_DIR, e)),
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| names::is_ours(n))
        .collect();
    out.sort();
    Ok(out)
}

/// Makes `ns` and marks it as `owner`'s (the alias of its `lo`); refuses a namespace of
/// that name that another cloud marked.
pub async fn ensure(ns: &str, owner: &Owner) -> Result<()> {
    check(ns)?;
    if !exists(ns) {
        match cmd::run("ip", &["netns", "add", ns]).await {
            Err(e) if e.stderr_contains("File exists") => {}
            other => other.map(drop)?,
        }
    }
    let alias = loopback_alias(ns).await?;
    if owner.owns(alias.as_deref()) {
        return Ok(());
    }
    if owner.is_foreign(alias.as_deref()) {
        return Err(Error::invalid(
            "namespace of another cloud",
            format!("{ns} is marked {:?}", alias.unwrap_or_default()),
        ));
    }
    cmd::run(
        "ip",
        &["-n", ns, "link", "set", "dev", "lo", "alias", owner.mark()],
    )
    .await
    .map(drop)
}

/// Whether `ns` exists and carries `owner`'s mark.
pub async fn owned_by(ns: &str, owner: &Owner) -> Result<bool> {
    check(ns)?;
    if !exists(ns) {
        return Ok(false);
    }
    Ok(owner.owns(loopback_alias(ns).await?.as_deref()))
}

/// The alias of `lo` inside `ns`: where a namespace carries its owner's mark.
async fn loopback_alias(ns: &str) -> Result<Option<String>> {
    let out = cmd::run("ip", &["-n", ns, "-j", "link", "show", "dev", "lo"]).await?;
    Ok(cmd::parse_json("ip", &out)?
        .get(0)
        .and_then(|l| l.get("ifalias"))
        .and_then(Value::as_str)
        .map(str::to_owned))
}

/// Kills whatever runs inside, then deletes the namespace; a missing one is fine.
pub async fn delete(ns: &str) -> Result<()> {
    check(ns)?;
    if !exists(ns) {
        return Ok(());
    }
    let pids = cmd::run("ip", &["netns", "pids", ns]).await?;
    let pids: Vec<&str> = pids.split_whitespace().collect();
    if !pids.is_empty() {
        let mut args = vec!["-KILL"];
        args.extend(&pids);
        // A process may exit between listing and killing; that is what we wanted anyway.
        if let Err(e) = cmd::run("kill", &args).await {
            tracing::debug!(ns, error = %e, "kill inside namespace");
        }
    }
    match cmd::run("ip", &["netns", "del", ns]).await {
        Err(e) if e.stderr_contains("No such file") => Ok(()),
        other => other.map(drop),
    }
}

/// Runs `args` inside `ns` and returns its stdout.
pub async fn exec<S: AsRef<str>>(ns: &str, args: &[S]) -> Result<String> {
    check(ns)?;
    let mut full = vec!["netns".to_owned(), "exec".to_owned(), ns.to_owned()];
    full.extend(args.iter().map(|a| a.as_ref().to_owned()));
    cmd::run("ip", &full).await
}

/// Moves `link` from the host into `ns`; fine if it is already there.
pub async fn move_link(link: &str, ns: &str) -> Result<()> {
    check(ns)?;
    if !names::is_safe_ifname(link) {
        return Err(Error::invalid("interface name", link));
    }
    match cmd::run("ip", &["link", "set", "dev", link, "netns", ns]).await {
        Err(e) if e.stderr_contains("Cannot find device") || e.stderr_contains("not exist") => {
            cmd::run("ip", &["-n", ns, "link", "show", "dev", link])
                .await
                .map(drop)
        }
        other => other.map(drop),
    }
}

/// Makes the addresses of `dev` inside `ns` exactly `addrs` (link-local addresses the
/// kernel makes are kept), and brings `dev` and `lo` up; returns the addresses it added.
pub async fn ensure_addresses(ns: &str, dev: &str, addrs: &[IpNet]) -> Result<Vec<IpNet>> {
    check(ns)?;
    if !names::is_safe_ifname(dev) {
        return Err(Error::invalid("interface name", dev));
    }
    let out = cmd::run("ip", &["-n", ns, "-j", "addr", "show", "dev", dev]).await?;
    let current = parse_addrs(&cmd::parse_json("ip", &out)?);
    let wanted: BTreeSet<IpNet> = addrs.iter().copied().collect();
    for a in current.difference(&wanted) {
        let a = a.to_string();
        cmd::run("ip", &["-n", ns, "addr", "del", &a, "dev", dev]).await?;
    }
    let added: Vec<IpNet> = wanted.difference(&current).copied().collect();
    for a in &added {
        let text = a.to_string();
        let mut args = vec!["-n", ns, "addr", "add", &text, "dev", dev];
        if a.addr().is_ipv6() {
            // Duplicate detection would leave the address unusable for a second or more.
            args.push("nodad");
        }
        cmd::run("ip", &args).await?;
    }
    cmd::run("ip", &["-n", ns, "link", "set", "dev", dev, "up"]).await?;
    cmd::run("ip", &["-n", ns, "link", "set", "dev", "lo", "up"]).await?;
    Ok(added)
}

/// `addr`/32 on the namespace's `lo` when `wanted`, absent otherwise; `lo` is up either way.
pub async fn ensure_lo_address(ns: &str, addr: Ipv4Addr, wanted: bool) -> Result<()> {
    check(ns)?;
    cmd::run("ip", &["-n", ns, "link", "set", "dev", "lo", "up"]).await?;
    let out = cmd::run("ip", &["-n", ns, "-j", "-4", "addr", "show", "dev", "lo"]).await?;
    let v = cmd::parse_json("ip", &out)?;
    let text = addr.to_string();
    let present = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("addr_info")?.as_array())
        .flatten()
        .any(|a| a.get("local").and_then(Value::as_str) == Some(text.as_str()));
    let net = format!("{text}/32");
    match (wanted, present) {
        (true, false) => cmd::run("ip", &["-n", ns, "addr", "add", &net, "dev", "lo"])
            .await
            .map(drop),
        (false, true) => cmd::run("ip", &["-n", ns, "addr", "del", &net, "dev", "lo"])
            .await
            .map(drop),
        _ => Ok(()),
    }
}

/// A nonblocking TCP listener on `addr` inside namespace `ns`, for a server in this process
/// (the metadata proxy). A short-lived thread enters the namespace and binds: a socket keeps
/// the namespace it was made in, the rest of the process stays where it is.
pub fn bind_listener(ns: &str, addr: SocketAddr) -> Result<std::net::TcpListener> {
    if !exists(ns) {
        return Err(Error::invalid("no such namespace", ns));
    }
    let path = Path::new(NETNS_DIR).join(ns);
    let thread_path = path.clone();
    let bound = std::thread::spawn(move || -> std::io::Result<std::net::TcpListener> {
        let file = std::fs::File::open(&thread_path)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    })
    .join();
    match bound {
        Ok(result) => result.map_err(|e| Error::io(path, e)),
        Err(_) => Err(Error::io(
            path,
            std::io::Error::other("namespace bind thread panicked"),
        )),
    }
}

/// `(st_dev, st_ino)` of `/run/netns/<ns>`: changes when the namespace is re-created under
/// the same name, so a holder of sockets in the old one knows to bind again.
pub fn namespace_identity(ns: &str) -> Option<(u64, u64)> {
    if !exists(ns) {
        return None;
    }
    let meta = std::fs::metadata(Path::new(NETNS_DIR).join(ns)).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Global-scope addresses from `ip -j addr show`.
fn parse_addrs(v: &Value) -> BTreeSet<IpNet> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.get("addr_info")?.as_array())
        .flatten()
        .filter(|a| a.get("scope").and_then(Value::as_str) != Some("link"))
        .filter_map(|a| {
            let ip: std::net::IpAddr = a.get("local")?.as_str()?.parse().ok()?;
            let len = u8::try_from(a.get("prefixlen")?.as_u64()?).ok()?;
            IpNet::new(ip, len).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_skips_link_local() {
        let v: Value = serde_json::from_str(
            r#"[{"ifname":"osdi-x","addr_info":[
              {"family":"inet","local":"10.251.0.3","prefixlen":24,"scope":"global"},
              {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#,
        )
        .expect("json");
        let got: Vec<String> = parse_addrs(&v).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["10.251.0.3/24"]);
    }

    #[test]
    fn refuses_odd_namespace_names() {
        for bad in ["", "../x", "a/b", "a b", ".hidden"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
