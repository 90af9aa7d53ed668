//! Hosts as the API shows them: `os-services`, `os-hypervisors` (with usage),
//! `os-availability-zone`, plus project usage (`limits`, `os-quota-sets`,
//! `os-simple-tenant-usage`).

use std::collections::BTreeMap;

use onestack_db::now_micros;
use serde_json::{Value, json};

use super::resource_input::QuotaUpdate;
use crate::config::QUOTA_RESOURCES;
use crate::error::{Error, Result};
use crate::microversion::Version;
use crate::model::{Host, Server};
use crate::policy::Caller;
use crate::service::Computes;
use crate::store::{self, ServerFilter};
use crate::views::{parse_time, time_micro};

/// A compute service as a request names it: by uuid from 2.53, by its number in the
/// listing before.
#[derive(Debug, Clone)]
pub enum ServiceId {
    Uuid(String),
    Number(usize),
}

/// What a server's host plugs into its guests.
#[derive(Debug, Clone, Copy)]
pub enum Plug {
    Ports,
    Volumes,
}

impl Computes {
    /// Refuses to give a server ports or volumes its host cannot plug in (a joined host
    /// without a network agent, or without the volume files).
    pub(crate) async fn require_plugs(&self, server: &Server, plug: Plug) -> Result<()> {
        let Some(name) = server.host.as_deref() else {
            return Ok(());
        };
        let Some(host) = store::host(&self.pool, name).await? else {
            return Ok(());
        };
        let (plugs, what) = match plug {
            Plug::Ports => (host.plugs_ports, "network interfaces"),
            Plug::Volumes => (host.plugs_volumes, "volumes"),
        };
        if plugs {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "Instance {}'s host {name} plugs in no {what}: boot the server on a host that \
                 does, or move it there.",
                server.id
            )))
        }
    }

    pub async fn services(&self, caller: &Caller, version: Version) -> Result<Vec<Value>> {
        caller.require_admin("os-services:list")?;
        let live = self.config.liveness(now_micros());
        Ok(store::hosts(&self.pool)
            .await?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut s = json!({
                    "id": if version.at_least(53) { json!(h.service_id) } else { json!(i + 1) },
                    "binary": "nova-compute",
                    "host": h.host,
                    "zone": h.availability_zone(),
                    "status": if h.disabled { "disabled" } else { "enabled" },
                    "state": if live.is_up(h) { "up" } else { "down" },
                    "updated_at": time_micro(h.updated_at),
                    "disabled_reason": h.disabled_reason,
                });
                if version.at_least(11) {
                    s["forced_down"] = json!(h.forced_down);
                }
                s
            })
            .collect())
    }

    /// Enables, disables or forces down a host's compute service.
    pub async fn update_service(
        &self,
        caller: &Caller,
        find: impl Fn(&Host) -> bool,
        status: Option<bool>,
        reason: Option<String>,
        forced_down: Option<bool>,
    ) -> Result<Host> {
        caller.require_admin("os-services:update")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let mut host = store::hosts(&mut *tx)
            .await?
            .into_iter()
            .find(|h| find(h))
            .ok_or_else(|| Error::NotFound("Service not found.".into()))?;
        if let Some(disabled) = status {
            host.disabled = disabled;
            host.disabled_reason = if disabled { reason } else { None };
        }
        if let Some(f) = forced_down {
            host.forced_down = f;
        }
        store::save_host(&mut *tx, &host).await?;
        tx.commit().await?;
        Ok(host)
    }

    /// Removes a host's compute service (`DELETE /os-services/{id}`), refused while servers
    /// are on it. A joined host's credential goes in the same transaction: its agent is
    /// refused from then on and must join again.
    pub async fn delete_service(&self, caller: &Caller, service: &ServiceId) -> Result<()> {
        caller.require_admin("os-services:delete")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let hosts = store::hosts(&mut *tx).await?;
        let found = match service {
            ServiceId::Uuid(id) => hosts.into_iter().find(|h| h.service_id == *id),
            ServiceId::Number(n) => hosts
                .into_iter()
                .nth(n.saturating_sub(1))
                .filter(|_| *n > 0),
        };
        let Some(host) = found else {
            let shown = match service {
                ServiceId::Uuid(id) => id.clone(),
                ServiceId::Number(n) => n.to_string(),
            };
            return Err(Error::NotFound(format!("Service {shown} not found.")));
        };
        let on_it = ServerFilter {
            host: Some(host.host.clone()),
            ..ServerFilter::default()
        };
        if !store::servers(&mut *tx, &on_it).await?.is_empty() {
            return Err(Error::Conflict(
                "Unable to delete compute service that is hosting instances. Migrate or delete \
                 the instances first."
                    .into(),
            ));
        }
        store::delete_host(&mut *tx, &host.host).await?;
        crate::ops::membership::forget_host(&mut *tx, &host.host).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn hypervisors(
        &self,
        caller: &Caller,
        version: Version,
        detail: bool,
    ) -> Result<Vec<Value>> {
        caller.require_admin("os-hypervisors:list")?;
        let hosts = store::hosts(&self.pool).await?;
        let usage = store::host_usage(&self.pool).await?;
        let live = self.config.liveness(now_micros());
        Ok(hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let id = if version.at_least(53) {
                    json!(h.hypervisor_id)
                } else {
                    json!(i + 1)
                };
                let mut v = json!({
                    "id": id,
                    "hypervisor_hostname": h.host,
                    "state": if live.is_up(h) { "up" } else { "down" },
                    "status": if h.disabled { "disabled" } else { "enabled" },
                });
                if detail {
                    let (servers, cpu, ram, disk) = usage.get(&h.host).copied().unwrap_or_default();
                    v["hypervisor_type"] = json!(h.hypervisor_type);
                    v["hypervisor_version"] = json!(h.hypervisor_version);
                    v["host_ip"] = json!(h.host_ip);
                    v["service"] = json!({
                        "id": if version.at_least(53) { json!(h.service_id) } else { json!(i + 1) },
                        "host": h.host,
                        "disabled_reason": h.disabled_reason,
                    });
                    if !version.at_least(88) {
                        v["vcpus"] = json!(h.vcpus);
                        v["memory_mb"] = json!(h.memory_mb);
                        v["local_gb"] = json!(h.disk_gb);
                        v["vcpus_used"] = json!(cpu);
                        v["memory_mb_used"] = json!(ram + h.reserved_memory_mb as i64);
                        v["local_gb_used"] = json!(disk);
                        v["free_ram_mb"] =
                            json!(h.memory_mb as i64 - h.reserved_memory_mb as i64 - ram);
                        v["free_disk_gb"] = json!(h.disk_gb as i64 - disk);
                        v["current_workload"] = json!(0);
                        v["running_vms"] = json!(servers);
                        v["disk_available_least"] = json!(h.disk_gb as i64 - disk);
                        v["cpu_info"] = json!("{}");
                    } else {
                        v["uptime"] = Value::Null;
                    }
                }
                v
            })
            .collect())
    }

    pub async fn zones(&self, caller: &Caller, detail: bool) -> Result<Vec<Value>> {
        if detail {
            caller.require_admin("os-availability-zone:detail")?;
        }
        let live = self.config.liveness(now_micros());
        let mut zones: BTreeMap<String, Vec<Host>> = BTreeMap::new();
        for h in store::hosts(&self.pool).await? {
            zones
                .entry(h.availability_zone().to_owned())
                .or_default()
                .push(h);
        }
        Ok(zones
            .into_iter()
            .map(|(zone, hosts)| {
                let available = hosts.iter().any(|h| !h.disabled && live.is_up(h));
                let hosts_view = if detail {
                    let map: serde_json::Map<String, Value> = hosts
                        .iter()
                        .map(|h| {
                            (h.host.clone(), json!({"nova-compute": {
                                "available": live.is_up(h), "active": !h.disabled,
                                "updated_at": time_micro(h.updated_at),
                            }}))
                        })
                        .collect();
                    Value::Object(map)
                } else {
                    Value::Null
                };
                json!({"zoneName": zone, "zoneState": {"available": available}, "hosts": hosts_view})
            })
            .collect())
    }

    /// `os-quota-sets` for a project: limits, or limits with usage (`detail`).
    pub async fn quota_set(
        &self,
        caller: &Caller,
        project_id: &str,
        detail: bool,
    ) -> Result<Value> {
        if !caller.owns(project_id) {
            return Err(Error::Policy("os_compute_api:os-quota-sets:show".into()));
        }
        let limits = self.quota_limits(&self.pool, project_id).await?;
        let mut out = serde_json::Map::new();
        out.insert("id".into(), json!(project_id));
        let usage = if detail {
            self.project_usage(project_id).await?
        } else {
            BTreeMap::new()
        };
        for (resource, limit) in limits {
            out.insert(
                resource.clone(),
                if detail {
                    json!({"limit": limit, "in_use": usage.get(&resource).copied().unwrap_or(0), "reserved": 0})
                } else {
                    json!(limit)
                },
            );
        }
        Ok(Value::Object(out))
    }

    pub fn default_quota_set(&self, project_id: &str) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("id".into(), json!(project_id));
        for r in QUOTA_RESOURCES {
            out.insert(
                (*r).into(),
                json!(self.config.default_quota(r).unwrap_or(-1)),
            );
        }
        Value::Object(out)
    }

    pub async fn update_quota_set(
        &self,
        caller: &Caller,
        project_id: &str,
        change: QuotaUpdate,
    ) -> Result<Value> {
        caller.require_admin("os-quota-sets:update")?;
        for (k, limit) in change.limits {
            store::QUOTAS.set(&self.pool, project_id, &k, limit).await?;
        }
        let mut view = self.quota_set(caller, project_id, false).await?;
        if let Value::Object(m) = &mut view {
            m.remove("id");
        }
        Ok(view)
    }

    pub async fn reset_quota_set(&self, caller: &Caller, project_id: &str) -> Result<()> {
        caller.require_admin("os-quota-sets:delete")?;
        Ok(store::QUOTAS.reset(&self.pool, project_id).await?)
    }

    pub async fn project_usage(&self, project_id: &str) -> Result<BTreeMap<String, i64>> {
        let mut tx = self.pool.begin().await?;
        let (instances, cores, ram) = store::project_usage(&mut tx, project_id).await?;
        tx.rollback().await?;
        let groups = store::groups(&self.pool, Some(project_id)).await?.len() as i64;
        let mut out = BTreeMap::new();
        out.insert("instances".into(), instances);
        out.insert("cores".into(), cores);
        out.insert("ram".into(), ram);
        out.insert("server_groups".into(), groups);
        Ok(out)
    }

    /// `GET /limits`: the project's absolute limits and what it uses.
    pub async fn limits(
        &self,
        caller: &Caller,
        version: Version,
        project: Option<&str>,
    ) -> Result<Value> {
        let project_id = match project {
            Some(p) if p != caller.project_id => {
                caller.require_admin("limits:other_project")?;
                p.to_owned()
            }
            _ => caller.project_id.clone(),
        };
        let limits = self.quota_limits(&self.pool, &project_id).await?;
        let usage = self.project_usage(&project_id).await?;
        let l = |k: &str| limits.get(k).copied().unwrap_or(-1);
        let u = |k: &str| usage.get(k).copied().unwrap_or(0);
        let mut absolute = json!({
            "maxTotalInstances": l("instances"),
            "maxTotalCores": l("cores"),
            "maxTotalRAMSize": l("ram"),
            "maxServerMeta": l("metadata_items"),
            "maxImageMeta": l("metadata_items"),
            "maxTotalKeypairs": l("key_pairs"),
            "maxServerGroups": l("server_groups"),
            "maxServerGroupMembers": l("server_group_members"),
            "totalInstancesUsed": u("instances"),
            "totalCoresUsed": u("cores"),
            "totalRAMUsed": u("ram"),
            "totalServerGroupsUsed": u("server_groups"),
        });
        if !version.at_least(57) {
            absolute["maxPersonality"] = json!(5);
            absolute["maxPersonalitySize"] = json!(10240);
        }
        if !version.at_least(36) {
            absolute["maxSecurityGroups"] = json!(-1);
            absolute["maxSecurityGroupRules"] = json!(-1);
            absolute["maxTotalFloatingIps"] = json!(-1);
            absolute["totalSecurityGroupsUsed"] = json!(0);
            absolute["totalFloatingIpsUsed"] = json!(0);
        }
        Ok(json!({"limits": {"rate": [], "absolute": absolute}}))
    }

    /// `os-simple-tenant-usage`: hours of vCPU, RAM and disk per project over a period,
    /// from the servers that exist now.
    pub async fn tenant_usage(
        &self,
        caller: &Caller,
        project: Option<&str>,
        params: &[(String, String)],
    ) -> Result<Vec<Value>> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        match project {
            Some(p) if !caller.owns(p) => {
                return Err(Error::Policy("os-simple-tenant-usage:show".into()));
            }
            None => caller.require_admin("os-simple-tenant-usage:list")?,
            _ => {}
        }
        let now = now_micros();
        let parse = |k: &str, default: i64| -> Result<i64> {
            match get(k) {
                Some(t) => parse_time(t).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Invalid input for query parameters {k}. Value: {t}."
                    ))
                }),
                None => Ok(default),
            }
        };
        let end = parse("end", now)?.min(now);
        let start = parse("start", end - 86_400_000_000)?;
        if start > end {
            return Err(Error::BadRequest(
                "Invalid start time. The start time cannot occur after the end time.".into(),
            ));
        }
        let detailed = get("detailed").is_some_and(|d| d == "1" || d.eq_ignore_ascii_case("true"));
        let filter = ServerFilter {
            project_id: project.map(str::to_owned),
            ..ServerFilter::default()
        };
        let mut per_project: BTreeMap<String, (f64, f64, f64, f64, Vec<Value>)> = BTreeMap::new();
        for s in store::servers(&self.pool, &filter).await? {
            let s = s.doc;
            let from = s.created_at.max(start);
            if from >= end {
                continue;
            }
            let hours = (end - from) as f64 / 3_600_000_000.0;
            let entry = per_project.entry(s.project_id.clone()).or_default();
            let disk = (s.flavor.disk + s.flavor.ephemeral) as f64;
            entry.0 += hours * disk;
            entry.1 += hours * f64::from(s.flavor.vcpus);
            entry.2 += hours * s.flavor.ram as f64;
            entry.3 += hours;
            if detailed || project.is_some() {
                entry.4.push(json!({
                    "instance_id": s.id, "name": s.name, "hours": hours, "memory_mb": s.flavor.ram,
                    "local_gb": s.flavor.disk + s.flavor.ephemeral, "vcpus": s.flavor.vcpus,
                    "tenant_id": s.project_id, "flavor": s.flavor.name,
                    "started_at": time_micro(s.created_at), "ended_at": Value::Null,
                    "state": s.vm_state,
                    "uptime": ((now - s.created_at) / 1_000_000).max(0),
                }));
            }
        }
        let (start_s, end_s) = (time_micro(start), time_micro(end));
        Ok(per_project
            .into_iter()
            .map(|(tenant, (disk, cpu, ram, hours, servers))| {
                let mut v = json!({
                    "tenant_id": tenant, "total_local_gb_usage": disk, "total_vcpus_usage": cpu,
                    "total_memory_mb_usage": ram, "total_hours": hours, "start": start_s, "stop": end_s,
                });
                if detailed || project.is_some() {
                    v["server_usages"] = json!(servers);
                }
                v
            })
            .collect())
    }
}
