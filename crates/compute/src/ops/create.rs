//! Server creation: the request (read by `api::server_body`) checked against the database
//! and the configuration, ports made, quota checked, the servers placed and recorded in one
//! transaction. The host agent does the rest.

use std::collections::BTreeMap;

use onestack_api::AuthContext;
use onestack_db::now_micros;
use onestack_image::model::Image;

use super::server_input::{NetworkRequest, NewServer, VolumeRequest};
use super::volume_backed::image_defined_volumes;
use crate::error::{Error, Result};
use crate::model::{Fault, Flavor, FlavorCopy, Nic, Server, VolumeAttachment};
use crate::policy::Caller;
use crate::scheduler;
use crate::service::{Computes, new_id};
use crate::states::{PowerState, TaskState, VmState};
use crate::store;

/// The most servers one request may ask for.
const MAX_COUNT: u64 = 1000;

/// What a validated create request asks for.
struct Plan {
    min_count: u64,
    name: String,
    description: Option<String>,
    hostname: Option<String>,
    /// `None` for a server that boots from a volume it was given; the image of a snapshot
    /// of such a server otherwise (its volumes are in `volumes`).
    image: Option<Image>,
    volumes: Vec<VolumeRequest>,
    flavor: Flavor,
    ephemeral_gb: Option<u64>,
    networks: Vec<NetworkRequest>,
    key: Option<(String, String)>,
    user_data: Option<String>,
    metadata: BTreeMap<String, String>,
    security_groups: Vec<(String, String)>,
    zone: Option<String>,
    forced_host: Option<String>,
    config_drive: bool,
    max_count: u64,
    group: Option<String>,
    tags: Vec<String>,
    access_ipv4: String,
    access_ipv6: String,
    return_reservation_id: bool,
}

impl Plan {
    /// Whether the root disk is the host's, made from the image.
    fn boots_from_image(&self) -> bool {
        self.image.is_some() && !self.volumes.iter().any(VolumeRequest::boots)
    }
}

/// The outcome of a create: the first server (or the reservation) and its admin password.
pub struct Created {
    pub server: Server,
    pub reservation_id: String,
    pub return_reservation_id: bool,
    pub admin_pass: String,
}

/// Nova's hostname from a display name: lower case, runs of other characters as `-`.
pub fn sanitize_hostname(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && (c == ' ' || c == '_' || c == '-' || c == '.') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(63).collect();
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() { "server".into() } else { out }
}

/// The last path segment of an id-or-link reference (`flavorRef` may be a URL).
pub(crate) fn reference(value: &str) -> &str {
    value.rsplit('/').next().unwrap_or(value)
}

impl Computes {
    /// Checks a create request against the database and the configuration before anything
    /// is made, in Nova's order.
    async fn plan(&self, ctx: &AuthContext, caller: &Caller, new: NewServer) -> Result<Plan> {
        let flavor = self
            .visible_flavor(caller, reference(&new.flavor_ref))
            .await
            .map_err(|_| {
                Error::BadRequest(format!("Flavor {} could not be found.", new.flavor_ref))
            })?;
        if flavor.disabled {
            return Err(Error::BadRequest(format!(
                "Flavor {} is disabled.",
                flavor.id
            )));
        }
        let mut ephemeral_gb = None;
        for size in &new.blank_disks {
            let size = size.unwrap_or(flavor.ephemeral);
            if size > flavor.ephemeral {
                return Err(Error::BadRequest(
                    "Ephemeral disks requested are larger than the instance type allows. If no size is given in one block device mapping, flavor ephemeral size will be used.".into(),
                ));
            }
            ephemeral_gb = Some(size);
        }
        let image = match &new.image_ref {
            Some(image_ref) => {
                let image = self
                    .images
                    .find(ctx, reference(image_ref))
                    .await
                    .map_err(|_| {
                        Error::BadRequest(format!("Image {image_ref} could not be found."))
                    })?;
                if image.status != onestack_image::model::Status::Active {
                    return Err(Error::BadRequest(format!(
                        "Image {} is not active.",
                        image.id
                    )));
                }
                Some(image)
            }
            None => None,
        };
        // A snapshot of a server that boots from volumes names the volumes to make; the
        // request's own boot volume, if any, replaces the image's.
        let mut volumes = new.volumes;
        if let Some(image) = &image {
            let asks_boot = volumes.iter().any(VolumeRequest::boots);
            volumes.extend(
                image_defined_volumes(image)?
                    .into_iter()
                    .filter(|v| !(asks_boot && v.boots())),
            );
            if !volumes.iter().any(VolumeRequest::boots) {
                let boot_iso = image.disk_format.as_deref() == Some("iso");
                check_image_fits(image, &flavor, boot_iso)?;
            } else if image.min_ram > flavor.ram as i64 {
                return Err(Error::BadRequest(
                    "Flavor's memory is too small for requested image.".into(),
                ));
            }
        }

        let networks = self.network_requests(caller, new.networks).await?;
        let key = match &new.key_name {
            Some(k) => {
                let pair = store::keypair(&self.pool, &caller.user_id, k)
                    .await?
                    .ok_or_else(|| Error::BadRequest("Invalid key_name provided.".into()))?;
                Some((pair.name, pair.public_key))
            }
            None => None,
        };
        let limits = self.quota_limits(&self.pool, &caller.project_id).await?;
        let max_meta = limits.get("metadata_items").copied().unwrap_or(-1);
        if max_meta >= 0 && new.metadata.len() as i64 > max_meta {
            return Err(Error::Forbidden(format!(
                "Quota exceeded for metadata_items: Requested {}, but already used 0 of {max_meta} metadata_items",
                new.metadata.len()
            )));
        }
        let wanted_groups = new
            .security_groups
            .unwrap_or_else(|| vec!["default".into()]);
        let security_groups = self.security_groups(caller, &wanted_groups).await?;
        if new.forced_host.is_some() {
            caller.require_admin("servers:create:forced_host")?;
        }
        if let Some(z) = &new.zone {
            let hosts = store::hosts(&self.pool).await?;
            if !hosts.iter().any(|h| h.availability_zone() == z)
                && z != &self.config.availability_zone
            {
                return Err(Error::BadRequest(format!(
                    "The requested availability zone is not available: {z}"
                )));
            }
        }
        let config_drive = new.config_drive || self.config.force_config_drive;
        let min_count = new.min_count.unwrap_or(1);
        let max_count = new.max_count.unwrap_or(min_count);
        if max_count > MAX_COUNT {
            return Err(Error::BadRequest(format!(
                "max_count may be at most {MAX_COUNT} in one request."
            )));
        }
        if min_count == 0 || max_count < min_count {
            return Err(Error::BadRequest(
                "min_count must be at least 1 and max_count at least min_count.".into(),
            ));
        }
        if max_count > 1
            && networks.iter().any(|n| {
                matches!(
                    n,
                    NetworkRequest::Port(_)
                        | NetworkRequest::Network {
                            fixed_ip: Some(_),
                            ..
                        }
                )
            })
        {
            return Err(Error::BadRequest(
                "Unable to launch multiple instances with a single configured port ID or fixed IP. Please launch your instance one by one with different ports.".into(),
            ));
        }
        self.check_volume_requests(caller, &volumes, max_count)
            .await?;
        let group = match &new.group {
            Some(g) => {
                let group = store::group(&self.pool, g)
                    .await?
                    .filter(|g| caller.owns(&g.project_id))
                    .ok_or_else(|| {
                        Error::BadRequest(format!("Server group {g} could not be found."))
                    })?;
                Some(group.id)
            }
            None => None,
        };
        Ok(Plan {
            min_count,
            name: new.name,
            description: new.description,
            hostname: new.hostname,
            image,
            volumes,
            flavor,
            ephemeral_gb,
            networks,
            key,
            user_data: new.user_data,
            metadata: new.metadata,
            security_groups,
            zone: new.zone,
            forced_host: new.forced_host,
            config_drive,
            max_count,
            group,
            tags: new.tags,
            access_ipv4: new.access_ipv4,
            access_ipv6: new.access_ipv6,
            return_reservation_id: new.return_reservation_id,
        })
    }

    pub async fn create_server(
        &self,
        ctx: &AuthContext,
        caller: &Caller,
        new: NewServer,
    ) -> Result<Created> {
        caller.require_writer("servers:create")?;
        if caller.project_id.is_empty() {
            return Err(Error::BadRequest(
                "Creating a server needs a project-scoped token.".into(),
            ));
        }
        let plan = self.plan(ctx, caller, new).await?;
        // Nova makes as many as the quota allows between min_count and max_count.
        let headroom = {
            let limits = self.quota_limits(&self.pool, &caller.project_id).await?;
            let limit = limits.get("instances").copied().unwrap_or(-1);
            let mut tx = self.pool.begin().await?;
            let (used, _, _) = store::project_usage(&mut tx, &caller.project_id).await?;
            tx.rollback().await?;
            if limit < 0 {
                u64::MAX
            } else {
                (limit - used).max(0) as u64
            }
        };
        let count = plan.max_count.min(headroom).max(plan.min_count);
        let reservation_id = format!("r-{}", &new_id()[..8]);
        let now = now_micros();
        let ids: Vec<String> = (0..count).map(|_| new_id()).collect();

        // Ports first, outside the server transaction (they take the network's write lock).
        let mut made_ports: Vec<String> = Vec::new();
        let mut nics_per_server = Vec::new();
        for id in &ids {
            match self.make_ports(caller, id, &plan).await {
                Ok(nics) => {
                    made_ports.extend(nics.iter().filter(|n| n.owned).map(|n| n.port_id.clone()));
                    nics_per_server.push(nics);
                }
                Err(e) => {
                    self.release_ports(&nics_per_server.concat()).await;
                    return Err(e);
                }
            }
        }

        let flavor = self.flavor_of(&plan);
        let volumes = match self
            .prepare_volumes(ctx, caller, &plan.volumes, &flavor, &ids)
            .await
        {
            Ok(volumes) => volumes,
            Err(e) => {
                self.release_ports(&nics_per_server.concat()).await;
                return Err(e);
            }
        };
        let outcome = self
            .record_servers(
                caller,
                &plan,
                &ids,
                (&nics_per_server, &volumes),
                &reservation_id,
                now,
            )
            .await;
        let servers = match outcome {
            Ok(servers) => servers,
            Err(e) => {
                self.release_ports(&nics_per_server.concat()).await;
                self.drop_prepared(&caller.project_id, &volumes).await;
                return Err(e);
            }
        };
        for server in &servers {
            if let Some(host) = &server.host {
                self.bind_ports(&server.nics, host).await;
            }
            self.record_action(caller, &server.id, "create").await;
        }
        self.changed_on(servers.iter().filter_map(|s| s.host.as_deref()));
        let first = servers
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("no server created".into()))?;
        Ok(Created {
            server: first,
            reservation_id,
            return_reservation_id: plan.return_reservation_id,
            admin_pass: random_password(),
        })
    }

    /// The flavor the servers of the plan get (its ephemeral size as the request says).
    fn flavor_of(&self, plan: &Plan) -> FlavorCopy {
        let mut flavor = FlavorCopy::from(&plan.flavor);
        if let Some(e) = plan.ephemeral_gb {
            flavor.ephemeral = e;
        }
        flavor
    }

    /// Makes (or takes over) the ports of one server.
    async fn make_ports(&self, caller: &Caller, server_id: &str, plan: &Plan) -> Result<Vec<Nic>> {
        let zone = plan
            .zone
            .clone()
            .unwrap_or_else(|| self.config.availability_zone.clone());
        self.make_ports_for(
            caller,
            server_id,
            &plan.networks,
            &plan.security_groups,
            &zone,
        )
        .await
    }

    /// Quota, placement and the records, in one transaction that holds the write lock.
    async fn record_servers(
        &self,
        caller: &Caller,
        plan: &Plan,
        ids: &[String],
        (nics, volumes): (&[Vec<Nic>], &[Vec<VolumeAttachment>]),
        reservation_id: &str,
        now: i64,
    ) -> Result<Vec<Server>> {
        let mut tx = store::begin_write(&self.pool).await?;
        let count = ids.len() as i64;
        self.check_server_quota(
            &mut tx,
            &caller.project_id,
            count,
            i64::from(plan.flavor.vcpus),
            plan.flavor.ram as i64,
        )
        .await?;
        let mut group = match &plan.group {
            Some(id) => store::group(&mut *tx, id).await?,
            None => None,
        };
        if let Some(g) = &group {
            let limits = self.quota_limits(&mut *tx, &g.project_id).await?;
            let max = limits.get("server_group_members").copied().unwrap_or(-1);
            if max >= 0 && (g.members.len() as i64 + count) > max {
                return Err(Error::Forbidden(format!(
                    "Quota exceeded, too many servers in group {}",
                    g.id
                )));
            }
        }
        let hosts = store::hosts(&mut *tx).await?;
        let mut usage = store::host_usage(&mut *tx).await?;
        let mut out = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            let number = store::next_server_number(&mut tx).await?;
            let flavor = self.flavor_of(plan);
            // A boot volume is the block storage service's disk, not the host's.
            let local_root = if plan.boots_from_image() {
                flavor.disk
            } else {
                0
            };
            let member_hosts: Vec<String> = match &group {
                Some(g) => {
                    let mut hs = Vec::new();
                    for m in &g.members {
                        if let Some(s) = store::server(&mut *tx, m).await?
                            && let Some(h) = s.doc.host
                        {
                            hs.push(h);
                        }
                    }
                    hs
                }
                None => Vec::new(),
            };
            let candidates: Vec<_> = hosts
                .iter()
                .filter(|h| plan.forced_host.as_ref().is_none_or(|f| &h.host == f))
                .cloned()
                .collect();
            let request = scheduler::Request {
                vcpus: u64::from(flavor.vcpus),
                ram_mb: flavor.ram,
                disk_gb: local_root + flavor.ephemeral,
                zone: plan.zone.as_deref(),
                group: group.as_ref().map(|g| (g.policy.as_str(), member_hosts)),
                max_per_host: group
                    .as_ref()
                    .and_then(|g| g.rules.get("max_server_per_host"))
                    .map(|m| *m as u64),
                needs_ports: !plan.networks.is_empty(),
                needs_volumes: !plan.volumes.is_empty(),
            };
            let host = scheduler::pick(&candidates, &usage, &request, self.config.liveness(now));
            let zone = host
                .as_ref()
                .and_then(|h| hosts.iter().find(|x| &x.host == h))
                .map(|h| h.availability_zone().to_owned())
                .or_else(|| plan.zone.clone())
                .unwrap_or_else(|| self.config.availability_zone.clone());
            let name = if ids.len() > 1 {
                format!("{}-{}", plan.name, index + 1)
            } else {
                plan.name.clone()
            };
            let hostname = match &plan.hostname {
                Some(h) if ids.len() == 1 => h.clone(),
                Some(h) => format!("{h}-{}", index + 1),
                None => sanitize_hostname(&name),
            };
            let (vm_state, task_state, fault) = match &host {
                Some(_) => (VmState::Building, Some(TaskState::Scheduling), None),
                None => (
                    VmState::Error,
                    None,
                    Some(Fault {
                        code: 500,
                        message: scheduler::NO_VALID_HOST.into(),
                        details: format!(
                            "No host has {} vCPUs, {} MiB RAM and {} GiB disk free{}.",
                            flavor.vcpus,
                            flavor.ram,
                            local_root + flavor.ephemeral,
                            plan.zone
                                .as_ref()
                                .map(|z| format!(" in zone {z}"))
                                .unwrap_or_default()
                        ),
                        created: now,
                    }),
                ),
            };
            if let Some(h) = &host {
                let entry = usage.entry(h.clone()).or_default();
                entry.0 += 1;
                entry.1 += i64::from(flavor.vcpus);
                entry.2 += flavor.ram as i64;
                entry.3 += (local_root + flavor.ephemeral) as i64;
            }
            let server = Server {
                id: id.clone(),
                project_id: caller.project_id.clone(),
                user_id: caller.user_id.clone(),
                name,
                description: plan.description.clone(),
                hostname,
                instance_name: format!("instance-{number:08x}"),
                reservation_id: reservation_id.to_owned(),
                launch_index: index as u32,
                image_id: plan
                    .image
                    .as_ref()
                    .map(|i| i.id.clone())
                    .unwrap_or_default(),
                flavor,
                old_flavor: None,
                key_name: plan.key.as_ref().map(|k| k.0.clone()),
                key_data: plan.key.as_ref().map(|k| k.1.clone()),
                user_data: plan.user_data.clone(),
                metadata: plan.metadata.clone(),
                tags: plan.tags.clone(),
                security_groups: plan
                    .security_groups
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect(),
                availability_zone: zone,
                requested_zone: plan.zone.clone(),
                host: host.clone(),
                nics: nics.get(index).cloned().unwrap_or_default(),
                volumes: volumes.get(index).cloned().unwrap_or_default(),
                vm_state,
                task_state,
                power_state: PowerState::NoState,
                config_drive: plan.config_drive,
                locked: false,
                locked_reason: None,
                locked_by: None,
                access_ipv4: plan.access_ipv4.clone(),
                access_ipv6: plan.access_ipv6.clone(),
                server_group: plan.group.clone(),
                fault,
                progress: 0,
                pending_image: None,
                previous_vm_state: None,
                migration: None,
                launched_at: None,
                created_at: now,
                updated_at: now,
            };
            store::insert_server(&mut tx, &server, number).await?;
            if let Some(g) = group.as_mut() {
                g.members.push(id.clone());
                store::save_group(&mut *tx, g).await?;
            }
            out.push(server);
        }
        tx.commit().await?;
        Ok(out)
    }
}

fn check_image_fits(image: &Image, flavor: &Flavor, boot_iso: bool) -> Result<()> {
    const GIB: i64 = 1 << 30;
    // Saturating: a flavor recorded before sizes were capped must not panic a request.
    let disk = i64::try_from(flavor.disk)
        .unwrap_or(i64::MAX)
        .saturating_mul(GIB);
    if boot_iso {
        if flavor.disk == 0 {
            return Err(Error::BadRequest(
                "Booting from an ISO needs a flavor with a root disk: it is the install target."
                    .into(),
            ));
        }
        return Ok(());
    }
    let size = image.virtual_size.or(image.size).unwrap_or(0);
    if flavor.disk > 0 && size > disk {
        return Err(Error::BadRequest(format!(
            "Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, image is {size} bytes."
        )));
    }
    if flavor.disk > 0 && image.min_disk > flavor.disk as i64 {
        return Err(Error::BadRequest(format!(
            "Flavor's disk is too small for requested image. Flavor disk is {disk} bytes, image requires {} GiB.",
            image.min_disk
        )));
    }
    if image.min_ram > flavor.ram as i64 {
        return Err(Error::BadRequest(
            "Flavor's memory is too small for requested image.".into(),
        ));
    }
    Ok(())
}

fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

pub(crate) fn admin_password() -> String {
    random_password()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_from_names() {
        assert_eq!(sanitize_hostname("My Server_1"), "my-server-1");
        assert_eq!(sanitize_hostname("--x--"), "x");
        assert_eq!(sanitize_hostname("ü"), "server");
    }
}
