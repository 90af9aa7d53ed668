//! Metadata of volumes and snapshots: the same calls on either, each behind its owner's
//! project check.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::policy::Caller;
use crate::service::Volumes;

type Metadata = BTreeMap<String, String>;

/// Whose metadata a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataOf {
    Volume,
    Snapshot,
}

impl MetadataOf {
    fn noun(self) -> &'static str {
        match self {
            Self::Volume => "Volume",
            Self::Snapshot => "Snapshot",
        }
    }

    fn rule(self, update: bool) -> &'static str {
        match (self, update) {
            (Self::Volume, true) => "volume:update_volume_metadata",
            (Self::Volume, false) => "volume:delete_volume_metadata",
            (Self::Snapshot, true) => "volume:update_snapshot_metadata",
            (Self::Snapshot, false) => "volume:delete_snapshot_metadata",
        }
    }

    pub fn missing_key(self, id: &str, key: &str) -> Error {
        Error::NotFound(format!(
            "{} {id} has no metadata with key {key}.",
            self.noun()
        ))
    }
}

impl Volumes {
    pub async fn metadata(&self, caller: &Caller, of: MetadataOf, id: &str) -> Result<Metadata> {
        Ok(match of {
            MetadataOf::Volume => self.get_volume(caller, id).await?.metadata,
            MetadataOf::Snapshot => self.get_snapshot(caller, id).await?.metadata,
        })
    }

    /// Merges `items` into the metadata (`replace`: they become the whole metadata).
    pub async fn set_metadata(
        &self,
        caller: &Caller,
        of: MetadataOf,
        id: &str,
        items: Metadata,
        replace: bool,
    ) -> Result<Metadata> {
        caller.require_writer(of.rule(true))?;
        let apply = |metadata: &mut Metadata| {
            if replace {
                metadata.clear();
            }
            metadata.extend(items.clone());
            Ok(())
        };
        self.change_metadata(caller, of, id, apply).await
    }

    pub async fn delete_metadata_item(
        &self,
        caller: &Caller,
        of: MetadataOf,
        id: &str,
        key: &str,
    ) -> Result<()> {
        caller.require_writer(of.rule(false))?;
        let remove = |metadata: &mut Metadata| match metadata.remove(key) {
            Some(_) => Ok(()),
            None => Err(of.missing_key(id, key)),
        };
        self.change_metadata(caller, of, id, remove).await.map(drop)
    }

    async fn change_metadata(
        &self,
        caller: &Caller,
        of: MetadataOf,
        id: &str,
        mut change: impl FnMut(&mut Metadata) -> Result<()>,
    ) -> Result<Metadata> {
        Ok(match of {
            MetadataOf::Volume => {
                self.modify(caller, id, |v| change(&mut v.metadata))
                    .await?
                    .metadata
            }
            MetadataOf::Snapshot => {
                self.modify_snapshot(caller, id, |s| change(&mut s.metadata))
                    .await?
                    .metadata
            }
        })
    }
}
