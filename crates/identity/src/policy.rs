//! Keystone's default policy, in one place. The cloud administrator holds the `admin` role
//! on the admin project or with system scope (`AuthContext::is_admin`); readers and members
//! see themselves, their own projects, and, with a domain-scoped token, their domain.

use onestack_api::AuthContext;

use crate::error::{Error, Result};

/// What an action is about, for the rules that compare it with the caller.
#[derive(Debug, Default, Clone, Copy)]
pub struct Target<'a> {
    pub user_id: Option<&'a str>,
    pub project_id: Option<&'a str>,
    pub domain_id: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn user(id: &'a str) -> Self {
        Self {
            user_id: Some(id),
            ..Self::default()
        }
    }
    pub fn project(id: &'a str, domain_id: &'a str) -> Self {
        Self {
            project_id: Some(id),
            domain_id: Some(domain_id),
            ..Self::default()
        }
    }
    pub fn domain(id: &'a str) -> Self {
        Self {
            domain_id: Some(id),
            ..Self::default()
        }
    }
}

fn is_self(ctx: &AuthContext, target: &Target) -> bool {
    target.user_id == Some(ctx.user_id.as_str())
}

fn domain_reader(ctx: &AuthContext, target: &Target) -> bool {
    ctx.has_role("reader") && ctx.domain_id().is_some() && ctx.domain_id() == target.domain_id
}

/// Allows or refuses `action` on `target`, with Keystone's 403 message.
pub fn enforce(ctx: &AuthContext, action: &'static str, target: Target) -> Result<()> {
    if ctx.is_admin() {
        return Ok(());
    }
    let allowed = match action {
        // Anyone authenticated.
        "identity:get_region"
        | "identity:list_regions"
        | "identity:get_auth_catalog"
        | "identity:get_auth_projects"
        | "identity:get_auth_domains"
        | "identity:get_auth_system" => true,
        // Only oneself.
        "identity:change_password"
        | "identity:list_user_projects"
        | "identity:list_application_credentials"
        | "identity:get_application_credential"
        | "identity:create_application_credential"
        | "identity:delete_application_credential"
        | "identity:ec2_list_credentials"
        | "identity:ec2_get_credential"
        | "identity:ec2_create_credential"
        | "identity:ec2_delete_credential"
        | "identity:get_credential"
        | "identity:list_credentials"
        | "identity:create_credential"
        | "identity:update_credential"
        | "identity:delete_credential"
        | "identity:validate_token"
        | "identity:check_token"
        | "identity:revoke_token" => is_self(ctx, &target),
        // Oneself, or a reader of the user's domain.
        "identity:get_user" | "identity:list_groups_for_user" => {
            is_self(ctx, &target) || domain_reader(ctx, &target)
        }
        // The project one is scoped to, or a reader of its domain.
        "identity:get_project" => {
            (target.project_id.is_some() && ctx.project_id() == target.project_id)
                || domain_reader(ctx, &target)
        }
        "identity:get_domain" => {
            let own_project_domain = match &ctx.scope {
                onestack_api::Scope::Project { domain_id, .. } => {
                    Some(domain_id.as_str()) == target.domain_id
                }
                _ => false,
            };
            own_project_domain || domain_reader(ctx, &target)
        }
        // Readers of a domain may list what is in it.
        "identity:list_projects"
        | "identity:list_users"
        | "identity:list_groups"
        | "identity:get_group"
        | "identity:list_users_in_group"
        | "identity:list_role_assignments" => domain_reader(ctx, &target),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::Forbidden(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onestack_api::Scope;

    fn ctx(roles: &[&str], scope: Scope) -> AuthContext {
        AuthContext {
            user_id: "u1".into(),
            user_name: "u".into(),
            user_domain_id: "default".into(),
            scope,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            audit_id: String::new(),
            application_credential_id: None,
            is_admin_project: false,
        }
    }

    fn project_scope() -> Scope {
        Scope::Project {
            id: "p1".into(),
            name: "p".into(),
            domain_id: "default".into(),
        }
    }

    #[test]
    fn admin_may_do_anything() {
        let mut admin = ctx(&["admin"], project_scope());
        admin.is_admin_project = true;
        assert!(enforce(&admin, "identity:create_user", Target::default()).is_ok());
        assert!(
            enforce(
                &ctx(&["admin"], Scope::System),
                "identity:create_user",
                Target::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn admin_of_another_project_is_not_cloud_admin() {
        let tenant_admin = ctx(&["admin", "member", "reader"], project_scope());
        assert!(enforce(&tenant_admin, "identity:create_user", Target::default()).is_err());
        assert!(enforce(&tenant_admin, "identity:list_projects", Target::default()).is_err());
    }

    #[test]
    fn members_see_themselves_and_their_project_only() {
        let member = ctx(&["member", "reader"], project_scope());
        assert!(enforce(&member, "identity:get_user", Target::user("u1")).is_ok());
        assert!(enforce(&member, "identity:get_user", Target::user("u2")).is_err());
        assert!(
            enforce(
                &member,
                "identity:get_project",
                Target::project("p1", "default")
            )
            .is_ok()
        );
        assert!(
            enforce(
                &member,
                "identity:get_project",
                Target::project("p2", "default")
            )
            .is_err()
        );
        assert!(enforce(&member, "identity:list_users", Target::default()).is_err());
        assert!(enforce(&member, "identity:create_project", Target::default()).is_err());
    }

    #[test]
    fn domain_readers_list_their_domain() {
        let reader = ctx(
            &["reader"],
            Scope::Domain {
                id: "d1".into(),
                name: "d".into(),
            },
        );
        assert!(enforce(&reader, "identity:list_users", Target::domain("d1")).is_ok());
        assert!(enforce(&reader, "identity:list_users", Target::domain("d2")).is_err());
        assert!(enforce(&reader, "identity:create_user", Target::domain("d1")).is_err());
    }
}
