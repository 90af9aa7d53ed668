//! Who may do what, following Nova's default policy: admins everything; project members
//! manage their project's servers; readers only read; keypairs belong to their user.

use onestack_api::{ApiError, AuthContext};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    /// The project the token is scoped to ("" for a system- or domain-scoped admin).
    pub project_id: String,
    pub admin: bool,
    /// Holds `member` (or `admin`): may change things, not only read them.
    pub writer: bool,
    /// The request id, recorded in instance actions.
    pub request_id: String,
}

impl Caller {
    pub fn from_context(context: &AuthContext, request_id: String) -> Result<Self> {
        let admin = context.is_admin();
        let project_id = context.project_id().unwrap_or_default().to_owned();
        if project_id.is_empty() && !admin {
            return Err(
                ApiError::unauthorized("The compute API needs a project-scoped token.").into(),
            );
        }
        Ok(Self {
            user_id: context.user_id.clone(),
            writer: admin || context.has_role("member"),
            project_id,
            admin,
            request_id,
        })
    }

    pub fn owns(&self, project_id: &str) -> bool {
        self.admin || self.project_id == project_id
    }

    pub fn require_writer(&self, rule: &str) -> Result<()> {
        if self.writer {
            Ok(())
        } else {
            Err(Error::Policy(format!("os_compute_api:{rule}")))
        }
    }

    pub fn require_admin(&self, rule: &str) -> Result<()> {
        if self.admin {
            Ok(())
        } else {
            Err(Error::Policy(format!("os_compute_api:{rule}")))
        }
    }

    /// The same caller as the network service sees it.
    pub fn network(&self) -> onestack_network::policy::Caller {
        onestack_network::policy::Caller {
            project_id: self.project_id.clone(),
            admin: self.admin,
            writer: self.writer,
        }
    }
}
