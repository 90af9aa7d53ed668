//! Who may do what, following Neutron's default (secure RBAC) policy: admins everything;
//! project members create and change their project's resources; readers only read; shared
//! and external networks are visible to every project.

use crate::error::{Error, Result};
use crate::model::Network;

pub use onestack_api::Caller;

/// What the network service asks of a caller beyond the shared questions.
pub trait NetworkPolicy {
    fn can_see_network(&self, network: &Network) -> bool;
    /// The project a new resource belongs to: the caller's, or another one for admins.
    fn target_project(&self, requested: Option<String>, action: &str) -> Result<String>;
}

impl NetworkPolicy for Caller {
    fn can_see_network(&self, network: &Network) -> bool {
        self.owns(&network.project_id) || network.shared || network.external
    }

    fn target_project(&self, requested: Option<String>, action: &str) -> Result<String> {
        match requested {
            Some(p) if p != self.project_id => {
                if self.admin {
                    Ok(p)
                } else {
                    Err(Error::Policy(format!("rule:{action}")))
                }
            }
            Some(p) => Ok(p),
            None if self.project_id.is_empty() => Err(Error::BadRequest(
                "'project_id' is required when the token is not scoped to a project.".into(),
            )),
            None => Ok(self.project_id.clone()),
        }
    }
}
