//! Volume transfers: a project offers an available volume (it is `awaiting-transfer` until
//! the offer is taken or withdrawn); whoever presents the transfer's id and its key, shown
//! once, takes the volume (and its snapshots, unless the offer left them) into their own
//! project, within their quotas.

use onestack_db::now_micros;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::volumes::owned_volume;
use crate::error::{Error, Result};
use crate::model::{Transfer, Versioned, VolumeStatus};
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store;

/// `POST /os-volume-transfer`.
#[derive(Debug, Default)]
pub struct NewTransfer {
    pub volume_id: String,
    pub name: Option<String>,
    /// 3.55+.
    pub no_snapshots: bool,
}

pub fn transfer_not_found(id: &str) -> Error {
    Error::NotFound(format!("Transfer {id} could not be found."))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

fn key_hash(salt: &str, key: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}{key}").as_bytes()))
}

/// Compares without leaking where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Volumes {
    /// Offers the volume; returns the transfer and its key (shown this once).
    pub async fn create_transfer(
        &self,
        caller: &Caller,
        new: NewTransfer,
    ) -> Result<(Transfer, String)> {
        caller.require_writer("volume:create_transfer")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let Versioned {
            doc: mut volume,
            revision,
        } = owned_volume(&mut *tx, caller, &new.volume_id).await?;
        if volume.status != VolumeStatus::Available {
            return Err(Error::invalid_volume(format!(
                "status must be available, but the current status is {}.",
                volume.status
            )));
        }
        // Snapshots left behind would be the giver's data on the taker's volume.
        if new.no_snapshots
            && !store::snapshots_of_volume(&mut *tx, &volume.id)
                .await?
                .is_empty()
        {
            return Err(Error::invalid_volume(format!(
                "volume {} has snapshots: transfer it with them, or delete them first.",
                volume.id
            )));
        }
        let key = random_hex(8);
        let salt = random_hex(8);
        let transfer = Transfer {
            id: onestack_db::ids::uuid(),
            project_id: volume.project_id.clone(),
            volume_id: volume.id.clone(),
            name: new.name,
            key_hash: key_hash(&salt, &key),
            salt,
            no_snapshots: new.no_snapshots,
            created_at: now_micros(),
        };
        store::insert_transfer(&mut tx, &transfer).await?;
        volume.status = VolumeStatus::AwaitingTransfer;
        volume.updated_at = Some(transfer.created_at);
        if !store::update_volume(&mut *tx, &volume, revision).await? {
            return Err(Error::Conflict(format!(
                "Volume {} changed meanwhile; try again.",
                volume.id
            )));
        }
        tx.commit().await?;
        Ok((transfer, key))
    }

    pub async fn list_transfers(
        &self,
        caller: &Caller,
        all_projects: bool,
    ) -> Result<Vec<Transfer>> {
        let project = (!(caller.admin && all_projects)).then_some(caller.project_id.as_str());
        store::transfers(&self.pool, project).await
    }

    pub async fn get_transfer(&self, caller: &Caller, id: &str) -> Result<Transfer> {
        match store::transfer(&self.pool, id).await? {
            Some(t) if caller.owns(&t.project_id) => Ok(t),
            _ => Err(transfer_not_found(id)),
        }
    }

    /// Withdraws the offer: the volume is available to its project again.
    pub async fn delete_transfer(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_writer("volume:delete_transfer")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let transfer = match store::transfer(&mut *tx, id).await? {
            Some(t) if caller.owns(&t.project_id) => t,
            _ => return Err(transfer_not_found(id)),
        };
        self.settle_volume(&mut tx, &transfer, None).await?;
        store::delete_transfer(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the volume into the caller's project with the transfer's key.
    pub async fn accept_transfer(
        &self,
        caller: &Caller,
        id: &str,
        auth_key: &str,
    ) -> Result<Transfer> {
        caller.require_writer("volume:accept_transfer")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let transfer = store::transfer(&mut *tx, id)
            .await?
            .ok_or_else(|| transfer_not_found(id))?;
        if !same(&key_hash(&transfer.salt, auth_key), &transfer.key_hash) {
            return Err(Error::Invalid(format!(
                "Invalid auth key: Attempt to transfer {id} with invalid auth key."
            )));
        }
        let volume = store::volume(&mut *tx, &transfer.volume_id)
            .await?
            .ok_or_else(|| Error::volume_not_found(&transfer.volume_id))?;
        let snapshots = if transfer.no_snapshots {
            Vec::new()
        } else {
            store::snapshots_of_volume(&mut *tx, &volume.doc.id).await?
        };
        let project = &caller.project_id;
        let snapshot_gb: u64 = snapshots.iter().map(|s| s.doc.size).sum();
        self.check_transfer_quota(
            &mut tx,
            project,
            volume.doc.size,
            snapshots.len(),
            snapshot_gb,
        )
        .await?;
        let now = now_micros();
        for Versioned { mut doc, revision } in snapshots {
            doc.project_id.clone_from(project);
            doc.user_id.clone_from(&caller.user_id);
            doc.updated_at = Some(now);
            if !store::update_snapshot(&mut *tx, &doc, revision).await? {
                return Err(Error::Conflict(format!(
                    "Snapshot {} changed meanwhile; try again.",
                    doc.id
                )));
            }
        }
        self.settle_volume(&mut tx, &transfer, Some(caller)).await?;
        store::delete_transfer(&mut tx, id).await?;
        tx.commit().await?;
        Ok(transfer)
    }

    /// The transfer's volume available again: in the accepting caller's project, or (no
    /// caller: the offer withdrawn) in its own.
    async fn settle_volume(
        &self,
        tx: &mut onestack_db::Tx,
        transfer: &Transfer,
        new_owner: Option<&Caller>,
    ) -> Result<()> {
        let Some(Versioned { mut doc, revision }) =
            store::volume(&mut **tx, &transfer.volume_id).await?
        else {
            return Ok(());
        };
        if doc.status != VolumeStatus::AwaitingTransfer {
            return Err(Error::invalid_volume(format!(
                "Volume {} is {}, not awaiting a transfer.",
                doc.id, doc.status
            )));
        }
        if let Some(owner) = new_owner {
            doc.project_id.clone_from(&owner.project_id);
            doc.user_id.clone_from(&owner.user_id);
        }
        doc.status = VolumeStatus::Available;
        doc.updated_at = Some(now_micros());
        if !store::update_volume(&mut **tx, &doc, revision).await? {
            return Err(Error::Conflict(format!(
                "Volume {} changed meanwhile; try again.",
                doc.id
            )));
        }
        Ok(())
    }
}
