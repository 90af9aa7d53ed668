//! Tags on networks, subnets, ports, security groups, routers and floating IPs (`/v2.0/{resource}/{id}/tags`).

use super::input;
use crate::error::{Error, Result};
use crate::policy::Caller;
use crate::service::{Networks, touch};
use crate::store;

/// The resource collections that carry tags.
#[derive(Debug, Clone, Copy)]
pub enum Tagged {
    Networks,
    Subnets,
    Ports,
    SecurityGroups,
    Routers,
    FloatingIps,
}

impl Tagged {
    pub fn from_collection(name: &str) -> Option<Self> {
        Some(match name {
            "networks" => Tagged::Networks,
            "subnets" => Tagged::Subnets,
            "ports" => Tagged::Ports,
            "security-groups" => Tagged::SecurityGroups,
            "routers" => Tagged::Routers,
            "floatingips" => Tagged::FloatingIps,
            _ => return None,
        })
    }
}

/// How a tag list changes.
pub enum TagChange {
    Replace(Vec<String>),
    Add(String),
    Remove(String),
    Clear,
}

fn apply(tags: &mut Vec<String>, change: TagChange) -> Result<()> {
    match change {
        TagChange::Replace(new) => {
            input::check_tags(&new)?;
            let mut new = new;
            new.dedup();
            *tags = new;
        }
        TagChange::Add(tag) => {
            input::check_tags(std::slice::from_ref(&tag))?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        TagChange::Remove(tag) => {
            let before = tags.len();
            tags.retain(|t| *t != tag);
            if tags.len() == before {
                return Err(Error::not_found("TagNotFound", "Tag", &tag));
            }
        }
        TagChange::Clear => tags.clear(),
    }
    Ok(())
}

impl Networks {
    pub async fn tags(&self, caller: &Caller, kind: Tagged, id: &str) -> Result<Vec<String>> {
        Ok(match kind {
            Tagged::Networks => self.get_network(caller, id).await?.std.tags,
            Tagged::Subnets => self.get_subnet(caller, id).await?.std.tags,
            Tagged::Ports => self.get_port(caller, id).await?.std.tags,
            Tagged::SecurityGroups => self.get_group(caller, id).await?.0.std.tags,
            Tagged::Routers => self.get_router(caller, id).await?.router.std.tags,
            Tagged::FloatingIps => self.get_floating_ip(caller, id).await?.fip.std.tags,
        })
    }

    pub async fn change_tags(
        &self,
        caller: &Caller,
        kind: Tagged,
        id: &str,
        change: TagChange,
    ) -> Result<Vec<String>> {
        caller.require_writer("update_tags")?;
        // Read first, then write in a short transaction: the revision check makes a
        // concurrent change fail cleanly, and no read waits behind our own write lock.
        let tags = match kind {
            Tagged::Networks => {
                let mut n = self.get_network(caller, id).await?;
                if !caller.owns(&n.project_id) {
                    return Err(Error::Policy("rule:update_networks_tags".into()));
                }
                apply(&mut n.std.tags, change)?;
                let previous = touch(&mut n.std);
                let mut tx = store::begin_write(&self.pool).await?;
                store::update_network(&mut tx, &n, previous).await?;
                tx.commit().await?;
                n.std.tags
            }
            Tagged::Subnets => {
                let mut s = self.get_subnet(caller, id).await?;
                if !caller.owns(&s.project_id) {
                    return Err(Error::Policy("rule:update_subnets_tags".into()));
                }
                apply(&mut s.std.tags, change)?;
                let previous = touch(&mut s.std);
                let mut tx = store::begin_write(&self.pool).await?;
                store::update_subnet(&mut tx, &s, previous).await?;
                tx.commit().await?;
                s.std.tags
            }
            Tagged::Ports => {
                let mut p = self.get_port(caller, id).await?;
                apply(&mut p.std.tags, change)?;
                let previous = touch(&mut p.std);
                let mut tx = store::begin_write(&self.pool).await?;
                store::update_port(&mut tx, &p, previous).await?;
                tx.commit().await?;
                p.std.tags
            }
            Tagged::SecurityGroups => {
                let mut g = self.get_group(caller, id).await?.0;
                apply(&mut g.std.tags, change)?;
                let previous = touch(&mut g.std);
                let mut tx = store::begin_write(&self.pool).await?;
                store::update_group(&mut tx, &g, previous).await?;
                tx.commit().await?;
                g.std.tags
            }
            Tagged::Routers => {
                let mut r = self.get_router(caller, id).await?.router;
                apply(&mut r.std.tags, change)?;
                let previous = touch(&mut r.std);
                let mut tx = store::begin_write(&self.pool).await?;
                store::update_router(&mut tx, &r, previous).await?;
                tx.commit().await?;
                r.std.tags
            }
            Tagged::FloatingIps => {
                let mut f = self.get_floating_ip(caller, id).await?.fip;
                apply(&mut f.std.tags, change)?;
                let previous = touch(&mut f.std);
                let mut tx = store::begin_write(&self.pool).await?;
                store::update_floating_ip(&mut tx, &f, previous).await?;
                tx.commit().await?;
                f.std.tags
            }
        };
        Ok(tags)
    }
}
