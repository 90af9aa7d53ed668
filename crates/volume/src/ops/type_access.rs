//! `os-volume-type-access`: the projects a private volume type is shared with. Only admins
//! see and change the list; a project it names may then see the type and make volumes of
//! it. A public type has no list.

use crate::error::{Error, Result};
use crate::policy::Caller;
use crate::service::Volumes;

impl Volumes {
    /// The projects private type `id` is shared with.
    pub async fn type_access(&self, caller: &Caller, id: &str) -> Result<Vec<String>> {
        caller.require_admin("volume_extension:volume_type_access")?;
        let volume_type = self.find_type(caller, id).await?;
        if volume_type.is_public {
            return Err(Error::NotFound(
                "Access list not available for public volume types.".into(),
            ));
        }
        Ok(volume_type.projects.into_iter().collect())
    }

    /// Shares private type `id` with `project` (`true`) or stops sharing it (`false`).
    pub async fn set_type_access(
        &self,
        caller: &Caller,
        id: &str,
        project: &str,
        shared: bool,
    ) -> Result<()> {
        let rule = if shared {
            "volume_extension:volume_type_access:addProjectAccess"
        } else {
            "volume_extension:volume_type_access:removeProjectAccess"
        };
        caller.require_admin(rule)?;
        self.change_type(id, |t| {
            if t.is_public {
                Err(Error::Invalid(
                    "Invalid volume type: Type access modification is not applicable to public volume type.".into(),
                ))
            } else if shared && !t.projects.insert(project.to_owned()) {
                Err(Error::Conflict(format!(
                    "Volume type access for {id} / {project} combination already exists."
                )))
            } else if !shared && !t.projects.remove(project) {
                Err(Error::NotFound(format!(
                    "Volume type access not found for {id} / {project} combination."
                )))
            } else {
                Ok(())
            }
        })
        .await
        .map(drop)
    }
}
