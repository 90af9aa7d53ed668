//! Flavors: public ones for everybody, private ones for the projects given access; extra
//! specs; admins create and delete.

use onestack_api::Fields;
use onestack_db::now_micros;
use serde_json::Value;

use super::{check_name, opt_flag, opt_uint, string_map};
use crate::error::{Error, Result};
use crate::model::Flavor;
use crate::policy::Caller;
use crate::service::{Computes, new_id};
use crate::store;

/// Nova's `db.MAX_INT`: the largest size a flavor may have.
const MAX_INT: u64 = 2_147_483_647;

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

    pub async fn create_flavor(&self, caller: &Caller, mut f: Fields) -> Result<Flavor> {
        caller.require_admin("os-flavor-manage:create")?;
        let name = f.string("name", 255).map_err(Error::from)?;
        check_name(&name, "Flavor")?;
        let id = match f.take("id") {
            None | Some(Value::Null) => new_id(),
            Some(Value::String(s)) if s == "auto" => new_id(),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 && s.trim() == s => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute id. Value: {other}."
                )));
            }
        };
        let required = |v: Option<u64>, key: &str| {
            v.ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for field/attribute flavor. '{key}' is a required property"
                ))
            })
        };
        let ram = required(opt_uint(&mut f, "ram")?, "ram")?;
        let vcpus = required(opt_uint(&mut f, "vcpus")?, "vcpus")?;
        let disk = required(opt_uint(&mut f, "disk")?, "disk")?;
        if ram == 0 || vcpus == 0 || vcpus > u64::from(u32::MAX) {
            return Err(Error::BadRequest(
                "Invalid input: ram and vcpus must be at least 1.".into(),
            ));
        }
        // Nova's schema bounds every size by the database's integer (2147483647); sizes
        // beyond it would overflow the arithmetic of placement and image checks.
        for (name, value) in [("ram", ram), ("vcpus", vcpus), ("disk", disk)] {
            if value > MAX_INT {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {name}. Value: {value}. {value} is greater than the maximum of {MAX_INT}"
                )));
            }
        }
        let swap = match f.take("swap") {
            Some(Value::String(s)) if s.is_empty() => 0,
            Some(v) => {
                let mut tmp = Fields::from_object(serde_json::json!({"swap": v}), "flavor")?;
                opt_uint(&mut tmp, "swap")?.unwrap_or(0)
            }
            None => 0,
        };
        let ephemeral = opt_uint(&mut f, "OS-FLV-EXT-DATA:ephemeral")?.unwrap_or(0);
        let rxtx_factor = match f.take("rxtx_factor") {
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|x| *x > 0.0)
                .ok_or_else(|| Error::BadRequest("Invalid rxtx_factor".into()))?,
            None | Some(Value::Null) => 1.0,
            Some(_) => {
                return Err(Error::BadRequest(
                    "Invalid input for field/attribute rxtx_factor.".into(),
                ));
            }
        };
        let is_public = opt_flag(&mut f, "os-flavor-access:is_public")?.unwrap_or(true);
        let description = f.opt_string_max("description", 65535)?;
        f.deny_unknown()?;
        let flavor = Flavor {
            id,
            name,
            vcpus: vcpus as u32,
            ram,
            disk,
            ephemeral,
            swap,
            rxtx_factor,
            is_public,
            disabled: false,
            description,
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

    pub async fn update_flavor(&self, caller: &Caller, id: &str, mut f: Fields) -> Result<Flavor> {
        caller.require_admin("os-flavor-manage:update")?;
        let mut flavor = self.get_flavor(caller, id).await?;
        if !f.contains("description") {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute flavor. 'description' is a required property"
                    .into(),
            ));
        }
        flavor.description = f.opt_string_max("description", 65535)?;
        f.deny_unknown()?;
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

    pub async fn set_extra_specs(
        &self,
        caller: &Caller,
        id: &str,
        specs: Value,
        replace_key: Option<&str>,
    ) -> Result<Flavor> {
        caller.require_admin("os-flavor-extra-specs:create")?;
        let mut flavor = self.get_flavor(caller, id).await?;
        let specs = string_map(specs, "extra_specs")?;
        if let Some(key) = replace_key
            && (specs.len() != 1 || !specs.contains_key(key))
        {
            return Err(Error::BadRequest("Request body and URI mismatch".into()));
        }
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
