//! DHCP with dnsmasq: one daemon per network, inside the namespace `osdhcp-<network id>`,
//! reached from the network's bridge through a veth pair (`osdh-…` on the bridge, `osdi-…`
//! in the namespace carrying the DHCP port's MAC and addresses).
//!
//! dnsmasq answers only the MACs listed in its hosts file (static ranges). It daemonizes
//! and so outlives onestack, as guests do: a restarted agent finds it again through its
//! pid file. Changed hosts/options files are picked up with SIGHUP; a changed command line
//! (subnets added or removed) restarts it. IPv6 subnets are skipped for now (no DHCPv6/RA).
//!
//! State lives in `<state_dir>/<network id>/`: `pid`, `hosts`, `opts`, `args`.

mod config;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::{cmd, link, mac, names, netns};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpNetwork {
    pub network_id: String,
    pub mtu: u32,
    /// The DHCP port's addresses, with their prefix lengths.
    pub addresses: Vec<IpNet>,
    /// The DHCP port's MAC, set on the namespace side of the veth.
    pub mac: String,
    pub subnets: Vec<DhcpSubnet>,
    pub hosts: Vec<DhcpHost>,
    /// Serve the metadata service from this namespace (a network no router serves): the
    /// metadata address on its `lo` and a route to it through the DHCP port in the options.
    pub metadata: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSubnet {
    pub id: String,
    pub cidr: IpNet,
    pub gateway: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
    /// Host routes: destination, next hop.
    pub routes: Vec<(IpNet, IpAddr)>,
    pub lease_secs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpHost {
    pub mac: String,
    pub ip: IpAddr,
    pub hostname: String,
}

const STOP_WAIT: Duration = Duration::from_secs(5);
const START_WAIT: Duration = Duration::from_secs(10);

fn net_dir(state_dir: &Path, network_id: &str) -> Result<PathBuf> {
    if names::is_safe_id(network_id) {
        Ok(state_dir.join(network_id))
    } else {
        Err(Error::invalid("network id", network_id))
    }
}

/// Makes DHCP for `net` run on `bridge`: namespace, veth, addresses, files, dnsmasq.
pub async fn ensure(
    state_dir: &Path,
    bridge: &str,
    net: &DhcpNetwork,
    owner: &Owner,
) -> Result<()> {
    let dir = net_dir(state_dir, &net.network_id)?;
    let ns = names::dhcp_namespace(&net.network_id);
    let outer = names::dhcp_bridge_side(&net.network_id);
    let inner = names::dhcp_ns_side(&net.network_id);
    let port_mac = mac::normalize(&net.mac)?;
    let config = config::render(&dir, &inner, net)?;

    netns::ensure(&ns, owner).await?;
    if !in_namespace(&ns, &inner).await {
        // The namespace side is missing or still on the host: (re)make the pair, or finish
        // one a kill interrupted (ensure_veth marks the host side of an existing pair too).
        if link::get(&inner).await?.is_none() {
            link::delete(&outer).await?;
        }
        link::ensure_veth(&outer, &inner, net.mtu, owner).await?;
        netns::move_link(&inner, &ns).await?;
    }
    if let Some(info) = link::get(&outer).await?
        && net.mtu != 0
        && info.mtu != net.mtu
    {
        link::set_mtu(&outer, net.mtu).await?;
    }
    link::attach(&outer, bridge, owner).await?;
    configure_inner(&ns, &inner, &port_mac, net).await?;
    netns::ensure_lo_address(&ns, crate::router::METADATA_ADDR, net.metadata).await?;

    readable_dir(&dir).await?;
    let mut files_changed = write_if_changed(&dir.join("hosts"), &config.hosts).await?;
    files_changed |= write_if_changed(&dir.join("opts"), &config.opts).await?;
    let args_text = config.args.join("\n") + "\n";
    let args_path = dir.join("args");
    let old_args = tokio::fs::read_to_string(&args_path).await.ok();

    match running(state_dir, &net.network_id) {
        Some(pid) if old_args.as_deref() == Some(args_text.as_str()) => {
            if files_changed {
                tracing::info!(network = %net.network_id, pid, "dnsmasq reload");
                signal(pid, "HUP").await?;
            }
            return Ok(());
        }
        Some(pid) => {
            tracing::info!(network = %net.network_id, pid, "dnsmasq restart: arguments changed");
            stop(pid).await?;
        }
        None => {}
    }
    write_if_changed(&args_path, &args_text).await?;
    start(&dir, &ns, &config.args).await?;
    if running(state_dir, &net.network_id).is_none() {
        return Err(Error::invalid(
            "dnsmasq did not come up (no live pid file)",
            dir.join("pid").display().to_string(),
        ));
    }
    Ok(())
}

/// Stops dnsmasq and removes the namespace, the veth pair and the state files.
pub async fn remove(state_dir: &Path, network_id: &str) -> Result<()> {
    let dir = net_dir(state_dir, network_id)?;
    if let Some(pid) = running(state_dir, network_id) {
        stop(pid).await?;
    }
    // The files before the namespace: the agent finds leftovers by their namespace, so a
    // kill between the two steps leaves something it sees and removes on its next pass.
    match tokio::fs::remove_dir_all(&dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&dir, e)),
        _ => {}
    }
    netns::delete(&names::dhcp_namespace(network_id)).await?;
    link::delete(&names::dhcp_bridge_side(network_id)).await
}

/// The networks that have DHCP state files under `state_dir` (one directory each, named
/// by the network's id), whether or not their server still runs.
pub fn networks_with_state(state_dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(state_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(state_dir, e)),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| names::is_safe_id(name))
        .collect())
}

/// Stops every dnsmasq whose files are under `state_dir` and removes the directory: for a
/// state directory an earlier version used (the agent then starts its own, elsewhere).
/// Namespaces and veths stay; the agent reuses them.
pub async fn retire(state_dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(state_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(state_dir, e)),
    };
    for entry in entries.flatten() {
        let Ok(network_id) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(pid) = running(state_dir, &network_id) {
            tracing::info!(network = %network_id, pid, "stopping the dnsmasq of an earlier version");
            stop(pid).await?;
        }
    }
    tokio::fs::remove_dir_all(state_dir)
        .await
        .map_err(|e| Error::io(state_dir, e))
}

/// The pid of this network's dnsmasq, if its pid file names a live dnsmasq that was
/// started for this network (pids are reused; the command line tells).
pub fn running(state_dir: &Path, network_id: &str) -> Option<u32> {
    let dir = net_dir(state_dir, network_id).ok()?;
    let pid: u32 = std::fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut argv = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let is_dnsmasq = argv.next().is_some_and(|a| a.ends_with("dnsmasq"));
    let pid_arg = format!("--pid-file={}", dir.join("pid").display());
    (is_dnsmasq && argv.any(|a| a == pid_arg)).then_some(pid)
}

async fn in_namespace(ns: &str, dev: &str) -> bool {
    cmd::run("ip", &["-n", ns, "link", "show", "dev", dev])
        .await
        .is_ok()
}

async fn configure_inner(ns: &str, dev: &str, mac: &str, net: &DhcpNetwork) -> Result<()> {
    let out = cmd::run("ip", &["-n", ns, "-j", "link", "show", "dev", dev]).await?;
    let v = cmd::parse_json("ip", &out)?;
    let link = v.get(0);
    let field = |k: &str| link.and_then(|l| l.get(k));
    if field("address").and_then(|a| a.as_str()) != Some(mac) {
        cmd::run("ip", &["-n", ns, "link", "set", "dev", dev, "address", mac]).await?;
    }
    if net.mtu != 0 && field("mtu").and_then(|m| m.as_u64()) != Some(u64::from(net.mtu)) {
        let mtu = net.mtu.to_string();
        cmd::run("ip", &["-n", ns, "link", "set", "dev", dev, "mtu", &mtu]).await?;
    }
    netns::ensure_addresses(ns, dev, &net.addresses)
        .await
        .map(drop)
}

/// Writes `path` through a temporary file and rename (dnsmasq may read it at any time);
/// returns whether the content changed.
/// dnsmasq drops to `nobody` and then reads its hosts and options files (again on every
/// SIGHUP): their directory must be open to it whatever the umask. They say which MAC gets
/// which address, nothing secret; the state directory is therefore not the private data
/// directory (see `onestack::server`).
async fn readable_dir(dir: &Path) -> Result<()> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Error::io(dir, e))?;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .await
        .map_err(|e| Error::io(dir, e))
}

async fn write_if_changed(path: &Path, content: &str) -> Result<bool> {
    if tokio::fs::read_to_string(path).await.ok().as_deref() == Some(content) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, content)
        .await
        .map_err(|e| Error::io(&tmp, e))?;
    tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
        .await
        .map_err(|e| Error::io(&tmp, e))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| Error::io(path, e))?;
    Ok(true)
}

async fn start(dir: &Path, ns: &str, args: &[String]) -> Result<()> {
    let pid_path = dir.join("pid");
    if let Err(e) = tokio::fs::remove_file(&pid_path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(Error::io(&pid_path, e));
    }
    let mut full = vec!["dnsmasq".to_owned()];
    full.extend_from_slice(args);
    // dnsmasq forks into its own session and returns once it is serving (or has failed).
    match tokio::time::timeout(START_WAIT, netns::exec(ns, &full)).await {
        Ok(result) => result.map(drop)?,
        Err(_) => return Err(Error::invalid("dnsmasq start timed out in namespace", ns)),
    }
    // The pid file may land just after the foreground process exits.
    for _ in 0..40 {
        if pid_path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

async fn signal(pid: u32, sig: &str) -> Result<()> {
    let sig = format!("-{sig}");
    let pid = pid.to_string();
    cmd::run("kill", &[sig.as_str(), pid.as_str()])
        .await
        .map(drop)
}

/// Whether `pid` is a live process: it exists and has not exited (a zombie waits for its
/// parent to reap it, which can take a while, or forever where nothing reaps).
fn is_live(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) STATE ...`: the state follows the last parenthesis (comm may hold any).
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// SIGTERM, then SIGKILL if it lingers.
async fn stop(pid: u32) -> Result<()> {
    let alive = || is_live(pid);
    if let Err(e) = signal(pid, "TERM").await {
        tracing::debug!(pid, error = %e, "SIGTERM dnsmasq");
    }
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    while alive() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if alive() {
        signal(pid, "KILL").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exited_process_is_not_live_before_it_is_reaped() {
        assert!(is_live(std::process::id()));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        let pid = child.id();
        // Unreaped: a zombie until `wait`.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while is_live(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!is_live(pid), "an exited, unreaped child counts as gone");
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "still a zombie"
        );
        child.wait().expect("reaped");
        assert!(!is_live(pid));
    }

    #[test]
    fn lists_the_networks_with_state_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("onestack-dhcp-state-{}", std::process::id()));
        let id = "1d756cae-9eb2-43bc-9d5e-6bfaf8ce631b";
        std::fs::create_dir_all(dir.join(id)).expect("state dir");
        std::fs::create_dir_all(dir.join("not an id!")).expect("odd dir");
        std::fs::write(dir.join("a-file"), "x").expect("file");
        assert_eq!(networks_with_state(&dir).expect("listed"), [id]);
        std::fs::remove_dir_all(&dir).expect("cleaned");
        assert!(
            networks_with_state(&dir)
                .expect("missing is empty")
                .is_empty()
        );
    }
}
