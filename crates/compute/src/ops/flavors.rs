//! Flavors: public ones for everybody, private ones for the projects given access; extra
//! specs; admins create and delete.

use std::collections::BTreeMap;

use onestack_db::now_micros;

use super::resource_input::{FlavorUpdate, NewFlavor};
use crate::error::{Error, Result};
use crate::model::Flavor;
use crate::policy::Caller;
use crate::service::{Computes, new_id};
use crate::store;

impl Computes {
    /// Flavors the caller sees, with Nova's `is_public`, `minRam` and `minDisk` filters.
    pub async fn list_flavors(
        &self,
        caller: &Caller,
        params: &[(String, String)],
    ) -> Result<Vec<Flavor>> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let min_ram: u64 = parse_min(get("minRam"), "minRam")?;
        let min_disk: u64 = parse_min(get("minDisk"), "minDisk")?;
        // Admins see public flavors by default, everything with is_public=None.
        let public_filter = match get("is_public").map(str::to_ascii_lowercase).as_deref() {
            Some("none") if caller.admin => None,
            Some("false" | "0" | "no") => Some(false),
            _ => Some(true),
        };
        let granted = if caller.admin {
            Vec::new()
        } else {
            store::flavors_of_project(&self.pool, &caller.project_id).await?
        };
        Ok(store::flavors(&self.pool)
            .await?
            .into_iter()
            .filter(|f| f.ram >= min_ram && f.disk >= min_disk)
            .filter(|f| match public_filter {
                _ if !caller.admin => f.is_public || granted.contains(&f.id),
                Some(p) => f.is_public == p,
                None => true,
            })
            .collect())
    }

    /// A flavor the caller may use, by id or name: public, or private with access given
    /// (admins: any).
    pub async fn visible_flavor(&self, caller: &Caller, id: &str) -> Result<Flavor> {
        let flavor = match store::flavor(&self.pool, id).await? {
            Some(f) => f,
            None => store::flavor_by_name(&self.pool, id)
                .await?
                .ok_or_else(|| Error::flavor_not_found(id))?,
        };
        if flavor.is_public || caller.admin {
            return Ok(flavor);
        }
        let access = store::flavor_access(&self.pool, &flavor.id).await?;
        if access.contains(&caller.project_id) {
            Ok(flavor)
        } else {
            Err(Error::flavor_not_found(id))
        }
    }

    pub async fn create_flavor(&self, caller: &Caller, new: NewFlavor) -> Result<Flavor> {
        caller.require_admin("os-flavor-manage:create")?;
        let flavor = Flavor {
            id: new.id.unwrap_or_else(new_id),
            name: new.name,
            vcpus: new.vcpus,
            ram: new.ram,
            disk: new.disk,
            ephemeral: new.ephemeral,
            swap: new.swap,
            rxtx_factor: new.rxtx_factor,
            is_public: new.is_public,
            disabled: false,
            description: new.description,
            extra_specs: Default::default(),
            created_at: now_micros(),
        };
        match store::insert_flavor(&self.pool, &flavor).await {
            Ok(()) => Ok(flavor),
            Err(Error::Db(e)) if onestack_db::is_unique_violation(&e) => {
                Err(Error::Conflict(format!(
                    "Flavor with name {} or ID {} already exists.",
                    flavor.name, flavor.id
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// A flavor by id, for showing: private ones are visible to admins and to projects with
    /// access (Nova shows them by id to everyone; we keep them private).
    pub async fn get_flavor(&self, caller: &Caller, id: &str) -> Result<Flavor> {
        let flavor = store::flavor(&self.pool, id)
            .await?
            .ok_or_else(|| Error::flavor_not_found(id))?;
        if flavor.is_public || caller.admin {
            return Ok(flavor);
        }
        if store::flavor_access(&self.pool, id)
            .await?
            .contains(&caller.project_id)
        {
            Ok(flavor)
        } else {
            Err(Error::flavor_not_found(id))
        }
    }

    pub async fn update_flavor(
        &self,
        caller: &Caller,
        id: &str,
        change: FlavorUpdate,
    ) -> Result<Flavor> {
        caller.require_admin("os-flavor-manage:update")?;
        let mut flavor = self.get_flavor(caller, id).await?;
        flavor.description = change.description;
        store::update_flavor(&self.pool, &flavor).await?;
        Ok(flavor)
    }

    pub async fn delete_flavor(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_admin("os-flavor-manage:delete")?;
        if store::delete_flavor(&self.pool, id).await? {
            Ok(())
        } else {
            Err(Error::flavor_not_found(id))
        }
    }

    /// Adds extra specs to a flavor, or changes them.
    pub async fn set_extra_specs(
        &self,
        caller: &Caller,
        id: &str,
        specs: BTreeMap<String, String>,
    ) -> Result<Flavor> {
        caller.require_admin("os-flavor-extra-specs:create")?;
        let mut flavor = self.get_flavor(caller, id).await?;
        flavor.extra_specs.extend(specs);
        store::update_flavor(&self.pool, &flavor).await?;
        Ok(flavor)
    }

    pub async fn delete_extra_spec(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        caller.require_admin("os-flavor-extra-specs:delete")?;
        let mut flavor = self.get_flavor(caller, id).await?;
        if flavor.extra_specs.remove(key).is_none() {
            return Err(Error::NotFound(format!(
                "Flavor {id} has no extra specs with key {key}."
            )));
        }
        store::update_flavor(&self.pool, &flavor).await
    }

    pub async fn flavor_access(&self, caller: &Caller, id: &str) -> Result<Vec<String>> {
        caller.require_admin("os-flavor-access")?;
        let flavor = self.get_flavor(caller, id).await?;
        if flavor.is_public {
            return Err(Error::NotFound(
                "Access list not available for public flavors.".into(),
            ));
        }
        store::flavor_access(&self.pool, id).await
    }

    pub async fn change_flavor_access(
        &self,
        caller: &Caller,
        id: &str,
        project: &str,
        add: bool,
    ) -> Result<Vec<String>> {
        caller.require_admin("os-flavor-access:add_tenant_access")?;
        let flavor = self.get_flavor(caller, id).await?;
        if flavor.is_public {
            return Err(Error::Conflict(
                "Can not add access to a public flavor.".into(),
            ));
        }
        let changed = store::set_flavor_access(&self.pool, id, project, add).await?;
        if !changed {
            return Err(if add {
                Error::Conflict(format!(
                    "Flavor access already exists for flavor {id} and project {project} combination."
                ))
            } else {
                Error::NotFound(format!(
                    "Flavor access not found for {id} / {project} combination."
                ))
            });
        }
        store::flavor_access(&self.pool, id).await
    }
}

fn parse_min(value: Option<&str>, key: &str) -> Result<u64> {
    value
        .map(|v| {
            v.parse()
                .map_err(|_| Error::BadRequest(format!("Invalid {key} filter [{v}]")))
        })
        .transpose()
        .map(|v| v.unwrap_or(0))
}
