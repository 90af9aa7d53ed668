//! `/v2/images/{id}/members`: the owner shares a `shared` image with projects, each of which
//! accepts or rejects it.

use onestack_api::AuthContext;
use onestack_db::now_micros;

use crate::error::{Error, Result};
use crate::model::{Image, Member};
use crate::policy::{self, Action};
use crate::service::Images;
use crate::store;

fn require_shared(image: &Image) -> Result<()> {
    if image.visibility == "shared" {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "Only shared images have members; image {} is {}.",
            image.id, image.visibility
        )))
    }
}

fn is_owner(ctx: &AuthContext, image: &Image) -> bool {
    ctx.is_admin() || ctx.project_id() == Some(image.owner.as_str())
}

fn member_not_found(id: &str, member_id: &str) -> Error {
    Error::NotFound(format!("{id} (member {member_id})"))
}

impl Images {
    /// The image's members; a member sees its own membership only.
    pub async fn members(&self, ctx: &AuthContext, id: &str) -> Result<Vec<Member>> {
        let image = self.find_for(ctx, id, Action::GetMembers).await?;
        require_shared(&image)?;
        let mut members = store::members(&self.pool, id).await?;
        if !is_owner(ctx, &image) {
            members.retain(|m| Some(m.member_id.as_str()) == ctx.project_id());
        }
        Ok(members)
    }

    pub async fn member(&self, ctx: &AuthContext, id: &str, member_id: &str) -> Result<Member> {
        let image = self.find_for(ctx, id, Action::GetMembers).await?;
        require_shared(&image)?;
        if !is_owner(ctx, &image) && ctx.project_id() != Some(member_id) {
            return Err(member_not_found(id, member_id));
        }
        store::get_member(&self.pool, id, member_id)
            .await?
            .ok_or_else(|| member_not_found(id, member_id))
    }

    /// Shares the image with project `member` (parsed from the body; refused after the
    /// caller's checks if it did not parse), pending its answer.
    pub async fn add_member(
        &self,
        ctx: &AuthContext,
        id: &str,
        member: Result<String>,
    ) -> Result<Member> {
        let image = self.find_for(ctx, id, Action::AddMember).await?;
        require_shared(&image)?;
        let member_id = member?;
        if store::get_member(&self.pool, id, &member_id)
            .await?
            .is_some()
        {
            return Err(Error::Conflict(format!(
                "Member {member_id} is already associated with image {id}."
            )));
        }
        let now = now_micros();
        let member = Member {
            image_id: id.to_owned(),
            member_id,
            status: "pending".into(),
            created_at: now,
            updated_at: now,
        };
        // Two adds of one member race past the check above; the key lets one in.
        match store::insert_member(&self.pool, &member).await {
            Err(e) if onestack_db::is_unique_violation(&e) => Err(Error::Conflict(format!(
                "Member {} is already associated with image {id}.",
                member.member_id
            ))),
            other => other.map(|()| member).map_err(Error::from),
        }
    }

    /// The member (only) sets its own status: pending, accepted or rejected.
    pub async fn update_member(
        &self,
        ctx: &AuthContext,
        id: &str,
        member_id: &str,
        status: Result<String>,
    ) -> Result<Member> {
        let image = self.find(ctx, id).await?;
        require_shared(&image)?;
        let mut member = store::get_member(&self.pool, id, member_id)
            .await?
            .ok_or_else(|| member_not_found(id, member_id))?;
        policy::enforce(ctx, Action::ModifyMember, member_id)?;
        member.status = status?;
        member.updated_at = now_micros();
        store::update_member(&self.pool, &member).await?;
        Ok(member)
    }

    pub async fn remove_member(&self, ctx: &AuthContext, id: &str, member_id: &str) -> Result<()> {
        let image = self.find_for(ctx, id, Action::DeleteMember).await?;
        require_shared(&image)?;
        if store::get_member(&self.pool, id, member_id)
            .await?
            .is_none()
        {
            return Err(member_not_found(id, member_id));
        }
        store::delete_member(&self.pool, id, member_id).await?;
        Ok(())
    }
}
