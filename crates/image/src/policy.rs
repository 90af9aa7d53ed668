//! Who may do what to images: Glance's default (secure RBAC) policies, in one place
//! (glance/policies/image.py and base.py).
//!
//! - writes (`add_image`, `modify_image`, `upload_image`, `delete_image`, `deactivate`,
//!   `reactivate`, `add_member`, `delete_member`, `communitize_image`): an admin, or the
//!   `member` role in the project that owns the image (or will own it);
//! - `publicize_image`: admins only;
//! - `modify_member` (accepting or rejecting a share): an admin, or `member` in the project
//!   the image is shared with;
//! - `download_image`: an admin, or `member` in a project that can see the image;
//! - reads (`get_image`, `get_images`, `get_members`): an admin, or `reader` in a project that
//!   can see the image.
//!
//! Which images a project can see at all is [`crate::Images::visible`]'s job; a caller who
//! cannot see an image gets a 404 before any of these rules is asked, so a 403 never tells
//! anyone that another project's private image exists. `admin` is [`AuthContext::is_admin`].

use onestack_api::AuthContext;

use crate::error::{Error, Result};

/// Glance's policy rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AddImage,
    GetImage,
    GetImages,
    ModifyImage,
    UploadImage,
    DownloadImage,
    DeleteImage,
    Deactivate,
    Reactivate,
    PublicizeImage,
    CommunitizeImage,
    AddMember,
    DeleteMember,
    GetMembers,
    ModifyMember,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::AddImage => "add_image",
            Action::GetImage => "get_image",
            Action::GetImages => "get_images",
            Action::ModifyImage => "modify_image",
            Action::UploadImage => "upload_image",
            Action::DownloadImage => "download_image",
            Action::DeleteImage => "delete_image",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::PublicizeImage => "publicize_image",
            Action::CommunitizeImage => "communitize_image",
            Action::AddMember => "add_member",
            Action::DeleteMember => "delete_member",
            Action::GetMembers => "get_members",
            Action::ModifyMember => "modify_member",
        }
    }
}

/// Whether the caller may do `action` on something whose project is `project`: the image's
/// owner (or the owner a create proposes), or for `modify_member` the member project.
/// Reads and downloads ignore `project`: visibility has already been decided.
pub fn allowed(ctx: &AuthContext, action: Action, project: &str) -> bool {
    let caller = Caller {
        admin: ctx.is_admin(),
        roles: &ctx.roles,
        project: ctx.project_id(),
    };
    caller.may(action, project)
}

/// What the rules look at in a caller.
struct Caller<'a> {
    admin: bool,
    roles: &'a [String],
    project: Option<&'a str>,
}

impl Caller<'_> {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    fn may(&self, action: Action, project: &str) -> bool {
        if self.admin {
            return true;
        }
        let scoped = self.project.is_some();
        match action {
            Action::GetImage | Action::GetImages | Action::GetMembers => {
                scoped && self.has("reader")
            }
            Action::DownloadImage => scoped && self.has("member"),
            Action::PublicizeImage => false,
            // `role:member and project_id:<project>`
            Action::AddImage
            | Action::ModifyImage
            | Action::UploadImage
            | Action::DeleteImage
            | Action::Deactivate
            | Action::Reactivate
            | Action::CommunitizeImage
            | Action::AddMember
            | Action::DeleteMember
            | Action::ModifyMember => self.has("member") && self.project == Some(project),
        }
    }
}

/// [`allowed`], or a 403 in oslo.policy's words.
pub fn enforce(ctx: &AuthContext, action: Action, project: &str) -> Result<()> {
    if allowed(ctx, action, project) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "You are not authorized to complete {} action.",
            action.name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Roles(Vec<String>, &'static str, bool);

    fn caller(project: &'static str, roles: &[&str]) -> Roles {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let admin = roles.iter().any(|r| r == "admin");
        Roles(roles, project, admin)
    }

    fn allowed(who: &Roles, action: Action, project: &str) -> bool {
        Caller {
            admin: who.2,
            roles: &who.0,
            project: Some(who.1),
        }
        .may(action, project)
    }

    const WRITES: [Action; 10] = [
        Action::AddImage,
        Action::ModifyImage,
        Action::UploadImage,
        Action::DeleteImage,
        Action::Deactivate,
        Action::Reactivate,
        Action::CommunitizeImage,
        Action::AddMember,
        Action::DeleteMember,
        Action::ModifyMember,
    ];

    #[test]
    fn readers_read_and_never_write() {
        let reader = caller("p", &["reader"]);
        for action in WRITES {
            assert!(!allowed(&reader, action, "p"), "{action:?}");
        }
        assert!(!allowed(&reader, Action::DownloadImage, "p"));
        assert!(!allowed(&reader, Action::PublicizeImage, "p"));
        for action in [Action::GetImage, Action::GetImages, Action::GetMembers] {
            assert!(allowed(&reader, action, "p"), "{action:?}");
        }
    }

    #[test]
    fn members_write_in_their_own_project_only() {
        let member = caller("p", &["member", "reader"]);
        for action in WRITES {
            assert!(allowed(&member, action, "p"), "{action:?}");
            assert!(!allowed(&member, action, "q"), "{action:?}");
        }
        assert!(allowed(&member, Action::DownloadImage, "q"));
        assert!(!allowed(&member, Action::PublicizeImage, "p"));
        // A role that is neither: nothing, not even reads.
        let other = caller("p", &["heat_stack_user"]);
        assert!(!allowed(&other, Action::GetImages, "p"));
        assert!(!allowed(&other, Action::AddImage, "p"));
    }

    #[test]
    fn admins_do_everything() {
        let admin = caller("admin", &["admin", "member", "reader"]);
        for action in WRITES {
            assert!(allowed(&admin, action, "anyone"), "{action:?}");
        }
        assert!(allowed(&admin, Action::PublicizeImage, "anyone"));
    }
}
