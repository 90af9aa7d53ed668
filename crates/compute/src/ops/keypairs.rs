//! Keypairs belong to a user: imported from a public key, or generated here for clients
//! below microversion 2.92 (the private key is returned once and never stored).

use onestack_db::now_micros;

use super::resource_input::{KeyType, NewKeypair};
use crate::error::{Error, Result};
use crate::keys;
use crate::microversion::Version;
use crate::model::Keypair;
use crate::policy::Caller;
use crate::service::Computes;
use crate::store;

impl Computes {
    /// Whose keypairs a request is about: the caller's, or (admins only) `user_id`'s.
    pub fn keypair_owner(
        &self,
        caller: &Caller,
        version: Version,
        user_id: Option<&str>,
    ) -> Result<String> {
        match user_id {
            Some(u) if version.at_least(10) && u != caller.user_id => {
                caller.require_admin("os-keypairs:index")?;
                Ok(u.to_owned())
            }
            _ => Ok(caller.user_id.clone()),
        }
    }

    pub async fn list_keypairs(&self, owner: &str) -> Result<Vec<Keypair>> {
        store::keypairs(&self.pool, owner).await
    }

    pub async fn get_keypair(&self, owner: &str, name: &str) -> Result<Keypair> {
        store::keypair(&self.pool, owner, name)
            .await?
            .ok_or_else(|| Error::keypair_not_found(name, owner))
    }

    /// Creates a keypair; returns it with the generated private key when one was made.
    pub async fn create_keypair(
        &self,
        caller: &Caller,
        new: NewKeypair,
    ) -> Result<(Keypair, Option<String>)> {
        let owner = match new.user_id {
            Some(u) if u != caller.user_id => {
                caller.require_admin("os-keypairs:create")?;
                u
            }
            _ => caller.user_id.clone(),
        };
        let (public_key, private_key) = match new.public_key {
            Some(p) => (p, None),
            None => {
                let (private, public) = keys::generate(&new.name).await?;
                (public, Some(private))
            }
        };
        if new.key_type == KeyType::X509 {
            return Err(Error::BadRequest("Keypair data is invalid: x509 certificates are not supported here; import an SSH public key.".into()));
        }
        let fingerprint = keys::fingerprint(&public_key)?;
        let mut tx = store::begin_write(&self.pool).await?;
        let limit = self
            .quota_limits(&mut *tx, &caller.project_id)
            .await?
            .get("key_pairs")
            .copied()
            .unwrap_or(-1);
        let used = store::count_keypairs(&mut tx, &owner).await?;
        if limit >= 0 && used >= limit {
            return Err(Error::Forbidden(
                "Quota exceeded, too many key pairs.".into(),
            ));
        }
        let keypair = Keypair {
            id: store::next_keypair_id(&mut tx).await?,
            name: new.name,
            user_id: owner,
            project_id: caller.project_id.clone(),
            key_type: new.key_type.as_str().to_owned(),
            public_key,
            fingerprint,
            created_at: now_micros(),
        };
        if !store::insert_keypair(&mut tx, &keypair).await? {
            return Err(Error::Conflict(format!(
                "Key pair '{}' already exists.",
                keypair.name
            )));
        }
        tx.commit().await?;
        Ok((keypair, private_key))
    }

    pub async fn delete_keypair(&self, owner: &str, name: &str) -> Result<()> {
        if store::delete_keypair(&self.pool, owner, name).await? {
            Ok(())
        } else {
            Err(Error::keypair_not_found(name, owner))
        }
    }
}
