//! Volume types: everyone reads the public ones and the private ones shared with their
//! project; admins make, change and delete them and their extra specs. The default type
//! cannot be deleted, nor a type volumes use.

use std::collections::BTreeMap;

use onestack_db::now_micros;

use super::type_input::{NewType, TypeUpdate};
use crate::error::{Error, Result};
use crate::model::VolumeType;
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store::{self, TypeKey};

/// Extra specs a non-admin may see (Cinder's user-visible keys).
const USER_VISIBLE_SPECS: [&str; 3] = [
    "RESKEY:availability_zones",
    "multiattach",
    "replication_enabled",
];

impl Volumes {
    /// The types the caller may use; an admin may ask for the public ones (`Some(true)`,
    /// Cinder's default), the private ones (`Some(false)`) or all (`None`). Public ones list
    /// with those shared with the caller's project, as Cinder lists them.
    pub async fn list_types(
        &self,
        caller: &Caller,
        public: Option<bool>,
    ) -> Result<Vec<VolumeType>> {
        let types = store::volume_types(&self.pool).await?;
        let shared = |t: &VolumeType| t.projects.contains(&caller.project_id);
        Ok(types
            .into_iter()
            .filter(|t| match (caller.admin, public) {
                (false, _) => t.usable_by(caller),
                (true, None) => true,
                (true, Some(true)) => t.is_public || shared(t),
                (true, Some(false)) => !t.is_public,
            })
            .map(|t| visible_specs(t, caller))
            .collect())
    }

    pub(super) async fn find_type(&self, caller: &Caller, id: &str) -> Result<VolumeType> {
        match store::volume_type(&self.pool, TypeKey::Id, id).await? {
            Some(t) if t.usable_by(caller) => Ok(t),
            _ => Err(Error::type_not_found(id)),
        }
    }

    pub async fn get_type(&self, caller: &Caller, id: &str) -> Result<VolumeType> {
        Ok(visible_specs(self.find_type(caller, id).await?, caller))
    }

    pub async fn default_type(&self, caller: &Caller) -> Result<VolumeType> {
        match store::volume_type(&self.pool, TypeKey::Name, &self.config.default_type).await? {
            Some(t) => Ok(visible_specs(t, caller)),
            None => Err(Error::NotFound(
                "Default volume type can not be found.".into(),
            )),
        }
    }

    /// The names of types by id, for rendering volumes.
    pub async fn type_names(&self) -> Result<BTreeMap<String, String>> {
        Ok(store::volume_types(&self.pool)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect())
    }

    pub async fn create_type(&self, caller: &Caller, new: NewType) -> Result<VolumeType> {
        caller.require_admin("volume_extension:types_manage")?;
        let volume_type = VolumeType {
            id: onestack_db::ids::uuid(),
            name: new.name,
            description: new.description,
            is_public: new.is_public,
            extra_specs: new.extra_specs,
            created_at: now_micros(),
            projects: Default::default(),
        };
        let mut tx = store::begin_write(&self.pool).await?;
        if !store::insert_type(&mut tx, &volume_type).await? {
            return Err(type_exists(&volume_type.name));
        }
        tx.commit().await?;
        Ok(volume_type)
    }

    pub async fn update_type(
        &self,
        caller: &Caller,
        id: &str,
        update: TypeUpdate,
    ) -> Result<VolumeType> {
        caller.require_admin("volume_extension:types_manage")?;
        self.change_type(id, |t| {
            if let Some(name) = update.name {
                t.name = name;
            }
            if let Some(description) = update.description {
                t.description = description;
            }
            if let Some(public) = update.is_public {
                t.is_public = public;
            }
            Ok(())
        })
        .await
    }

    /// Applies `change` to the type in one write transaction; a change that refuses
    /// (`Err`) writes nothing.
    pub(super) async fn change_type(
        &self,
        id: &str,
        change: impl FnOnce(&mut VolumeType) -> Result<()>,
    ) -> Result<VolumeType> {
        let mut tx = store::begin_write(&self.pool).await?;
        let mut volume_type = store::volume_type(&mut *tx, TypeKey::Id, id)
            .await?
            .ok_or_else(|| Error::type_not_found(id))?;
        let was_default = volume_type.name == self.config.default_type;
        change(&mut volume_type)?;
        if was_default && volume_type.name != self.config.default_type {
            return Err(Error::Invalid(
                "The default volume type cannot be renamed.".into(),
            ));
        }
        if !store::update_type(&mut tx, &volume_type).await? {
            return Err(type_exists(&volume_type.name));
        }
        tx.commit().await?;
        Ok(volume_type)
    }

    pub async fn delete_type(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_admin("volume_extension:types_manage")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let volume_type = store::volume_type(&mut *tx, TypeKey::Id, id)
            .await?
            .ok_or_else(|| Error::type_not_found(id))?;
        if volume_type.name == self.config.default_type {
            return Err(Error::Invalid(
                "Default volume type can not be deleted.".into(),
            ));
        }
        if !store::delete_unused_type(&mut tx, id).await? {
            return Err(Error::Invalid(format!(
                "Target volume type is still in use. Volume Type {id} deletion is not allowed with volumes present with the type."
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn type_extra_specs(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<BTreeMap<String, String>> {
        Ok(self.get_type(caller, id).await?.extra_specs)
    }

    /// Merges `specs` into the type's extra specs (admins only).
    pub async fn set_extra_specs(
        &self,
        caller: &Caller,
        id: &str,
        specs: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        caller.require_admin("volume_extension:types_extra_specs:create")?;
        self.change_type(id, |t| {
            t.extra_specs.extend(specs.clone());
            Ok(())
        })
        .await?;
        Ok(specs)
    }

    pub async fn delete_extra_spec(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        caller.require_admin("volume_extension:types_extra_specs:delete")?;
        self.change_type(id, |t| match t.extra_specs.remove(key) {
            Some(_) => Ok(()),
            None => Err(Error::NotFound(format!(
                "Volume Type {id} has no extra specs with key {key}."
            ))),
        })
        .await
        .map(drop)
    }
}

fn type_exists(name: &str) -> Error {
    Error::Conflict(format!("Volume Type {name} already exists."))
}

fn visible_specs(mut volume_type: VolumeType, caller: &Caller) -> VolumeType {
    if !caller.admin {
        volume_type.projects.clear();
        volume_type
            .extra_specs
            .retain(|k, _| USER_VISIBLE_SPECS.contains(&k.as_str()));
    }
    volume_type
}
