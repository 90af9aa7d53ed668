//! Who may do what, following Neutron's default (secure RBAC) policy: admins everything;
//! project members create and change their project's resources; readers only read; shared
//! and external networks are visible to every project.

use onestack_api::{ApiError, AuthContext};

use crate::error::{Error, Result};
use crate::model::Network;

/// The caller as the network service sees it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The project the token is scoped to ("" for a system- or domain-scoped admin).
    pub project_id: String,
    pub admin: bool,
    /// Holds `member` (or `admin`) and so may change things, not only read them.
    pub writer: bool,
}

impl Caller {
    pub fn from_context(context: &AuthContext) -> Result<Self> {
        let admin = context.is_admin();
        let project_id = context.project_id().unwrap_or_default().to_owned();
        if project_id.is_empty() && !admin {
            return Err(
                ApiError::unauthorized("The network API needs a project-scoped token.").into(),
            );
        }
        Ok(Self {
            writer: admin || context.has_role("member"),
            project_id,
            admin,
        })
    }

    /// Whether the caller owns resources of `project_id` (or administers the cloud).
    pub fn owns(&self, project_id: &str) -> bool {
        self.admin || self.project_id == project_id
    }

    pub fn can_see_network(&self, network: &Network) -> bool {
        self.owns(&network.project_id) || network.shared || network.external
    }

    /// Fails unless the caller may create or change things at all.
    pub fn require_writer(&self, action: &str) -> Result<()> {
        if self.writer {
            Ok(())
        } else {
            Err(Error::Policy(format!("rule:{action}")))
        }
    }

    pub fn require_admin(&self, rule: &str) -> Result<()> {
        if self.admin {
            Ok(())
        } else {
            Err(Error::Policy(format!("rule:{rule}")))
        }
    }

    /// The project a new resource belongs to: the caller's, or another one for admins.
    pub fn target_project(&self, requested: Option<String>, action: &str) -> Result<String> {
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
