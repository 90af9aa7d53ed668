//! Placement: filters hosts (enabled, up, plugging the server's ports and volumes, in the zone, with room for the
//! flavor after the allocation ratios, server-group policy) and weighs the rest by free RAM,
//! as Nova's filter scheduler does by default.

use std::collections::HashMap;

use crate::model::Host;

/// What one server needs.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub vcpus: u64,
    pub ram_mb: u64,
    pub disk_gb: u64,
    pub zone: Option<&'a str>,
    /// The server group's policy and the hosts its members are on.
    pub group: Option<(&'a str, Vec<String>)>,
    /// `max_server_per_host` of an anti-affinity group.
    pub max_per_host: Option<u64>,
    /// The server has ports (its host must plug them) or volumes (its host must keep them).
    pub needs_ports: bool,
    pub needs_volumes: bool,
}

/// Usage per host: (servers, vcpus, ram_mb, disk_gb).
pub type Usage = HashMap<String, (i64, i64, i64, i64)>;

/// When a host counts as up: it reported within `down_after_seconds` of `now` (Nova's
/// `service_down_time`) and no admin forced it down.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    pub now: i64,
    pub down_after_seconds: u64,
}

impl Liveness {
    pub fn is_up(&self, host: &Host) -> bool {
        let silent = self.now.saturating_sub(host.updated_at);
        !host.forced_down && silent <= (self.down_after_seconds as i64).saturating_mul(1_000_000)
    }
}

/// Why nothing fits, as Nova words it.
pub const NO_VALID_HOST: &str = "No valid host was found. There are not enough hosts available.";

pub fn free(host: &Host, usage: &Usage) -> (f64, f64, f64) {
    let (_, cpu, ram, disk) = usage.get(&host.host).copied().unwrap_or_default();
    let cpu_total = host.vcpus as f64 * host.cpu_ratio;
    let ram_total = host.memory_mb.saturating_sub(host.reserved_memory_mb) as f64 * host.ram_ratio;
    let disk_total = host.disk_gb as f64 * host.disk_ratio;
    (
        cpu_total - cpu as f64,
        ram_total - ram as f64,
        disk_total - disk as f64,
    )
}

/// Picks a host for `request`, or `None` when none fits.
pub fn pick(
    hosts: &[Host],
    usage: &Usage,
    request: &Request,
    liveness: Liveness,
) -> Option<String> {
    let mut candidates: Vec<(&Host, f64)> = hosts
        .iter()
        .filter(|h| !h.disabled && liveness.is_up(h))
        .filter(|h| {
            (h.plugs_ports || !request.needs_ports) && (h.plugs_volumes || !request.needs_volumes)
        })
        .filter(|h| request.zone.is_none_or(|z| z == h.availability_zone()))
        .filter_map(|h| {
            let (cpu, ram, disk) = free(h, usage);
            let fits = cpu >= request.vcpus as f64
                && ram >= request.ram_mb as f64
                && disk >= request.disk_gb as f64;
            fits.then_some((h, ram))
        })
        .collect();
    if let Some((policy, member_hosts)) = &request.group {
        let on = |h: &Host| member_hosts.iter().filter(|m| **m == h.host).count() as u64;
        match *policy {
            "affinity" if !member_hosts.is_empty() => candidates.retain(|(h, _)| on(h) > 0),
            "anti-affinity" => {
                let max = request.max_per_host.unwrap_or(1);
                candidates.retain(|(h, _)| on(h) < max)
            }
            // Soft policies weigh instead of filtering.
            "soft-affinity" => {
                for (h, weight) in candidates.iter_mut() {
                    *weight += on(h) as f64 * 1e9;
                }
            }
            "soft-anti-affinity" => {
                for (h, weight) in candidates.iter_mut() {
                    *weight -= on(h) as f64 * 1e9;
                }
            }
            _ => {}
        }
    }
    candidates
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(h, _)| h.host.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, vcpus: u64, ram: u64) -> Host {
        Host {
            host: name.into(),
            service_id: String::new(),
            hypervisor_id: String::new(),
            zone: "nova".into(),
            disabled: false,
            disabled_reason: None,
            forced_down: false,
            vcpus,
            memory_mb: ram,
            disk_gb: 100,
            cpu_ratio: 2.0,
            ram_ratio: 1.0,
            disk_ratio: 1.0,
            reserved_memory_mb: 0,
            hypervisor_type: "QEMU".into(),
            hypervisor_version: 0,
            host_ip: String::new(),
            plugs_ports: true,
            plugs_volumes: true,
            aggregate_zone: None,
            updated_at: 0,
        }
    }

    fn at(now: i64) -> Liveness {
        Liveness {
            now,
            down_after_seconds: 25,
        }
    }

    fn request(vcpus: u64, ram: u64) -> Request<'static> {
        Request {
            vcpus,
            ram_mb: ram,
            disk_gb: 1,
            zone: None,
            group: None,
            max_per_host: None,
            needs_ports: true,
            needs_volumes: false,
        }
    }

    #[test]
    fn accounts_ratios_usage_and_weighs_free_ram() {
        let hosts = vec![host("a", 2, 1000), host("b", 2, 4000)];
        let mut usage = Usage::new();
        assert_eq!(
            pick(&hosts, &usage, &request(4, 500), at(0)).as_deref(),
            Some("b")
        );
        assert_eq!(pick(&hosts, &usage, &request(5, 500), at(0)), None);
        usage.insert("b".into(), (1, 4, 3500, 1));
        assert_eq!(
            pick(&hosts, &usage, &request(1, 600), at(0)).as_deref(),
            Some("a")
        );
        assert_eq!(pick(&hosts, &usage, &request(1, 1200), at(0)), None);
    }

    #[test]
    fn honours_disabled_down_zones_and_groups() {
        let mut hosts = vec![host("a", 4, 4000), host("b", 4, 2000)];
        let usage = Usage::new();
        hosts[0].disabled = true;
        assert_eq!(
            pick(&hosts, &usage, &request(1, 100), at(0)).as_deref(),
            Some("b")
        );
        hosts[0].disabled = false;
        let down = 26 * 1_000_000;
        hosts[1].updated_at = down;
        assert_eq!(
            pick(&hosts, &usage, &request(1, 100), at(down)).as_deref(),
            Some("b")
        );
        hosts[1].updated_at = 0;
        // A host that plugs no ports takes only servers without any; volumes likewise.
        hosts[1].plugs_ports = false;
        assert_eq!(
            pick(&hosts, &usage, &request(1, 100), at(0)).as_deref(),
            Some("a")
        );
        let mut portless = request(1, 100);
        portless.needs_ports = false;
        hosts[0].disabled = true;
        assert_eq!(pick(&hosts, &usage, &portless, at(0)).as_deref(), Some("b"));
        hosts[0].disabled = false;
        hosts[1].plugs_ports = true;
        hosts[1].plugs_volumes = false;
        let mut with_volume = request(1, 100);
        with_volume.needs_volumes = true;
        assert_eq!(
            pick(&hosts, &usage, &with_volume, at(0)).as_deref(),
            Some("a")
        );
        hosts[1].plugs_volumes = true;
        let mut r = request(1, 100);
        r.zone = Some("elsewhere");
        assert_eq!(pick(&hosts, &usage, &r, at(0)), None);
        let mut r = request(1, 100);
        r.group = Some(("anti-affinity", vec!["a".into()]));
        assert_eq!(pick(&hosts, &usage, &r, at(0)).as_deref(), Some("b"));
        r.group = Some(("affinity", vec!["b".into()]));
        assert_eq!(pick(&hosts, &usage, &r, at(0)).as_deref(), Some("b"));
        r.group = Some(("soft-affinity", vec!["b".into()]));
        assert_eq!(pick(&hosts, &usage, &r, at(0)).as_deref(), Some("b"));
        r.group = Some(("anti-affinity", vec!["a".into(), "b".into()]));
        assert_eq!(pick(&hosts, &usage, &r, at(0)), None);
    }
}
