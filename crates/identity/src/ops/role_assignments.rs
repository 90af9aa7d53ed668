//! `GET /v3/role_assignments`: Keystone's filters, `effective` (group grants replaced by
//! their members', implied roles added) and `include_names`.

use std::collections::HashMap;

use onestack_api::AuthContext;

use crate::error::{Error, Result};
use crate::model::{ActorType, Assignment, Role, SYSTEM_ALL, TargetType};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;
use crate::store::assignments::AssignmentFilter;

/// The listing's filters, as given in the query.
#[derive(Debug, Default)]
pub struct AssignmentQuery {
    pub effective: bool,
    pub include_names: bool,
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub role_id: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub system: bool,
    /// `scope.OS-INHERIT:inherited_to`: inherited grants, which are never made here.
    pub inherited: bool,
}

/// One row of the listing, with how it was derived when effective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub assignment: Assignment,
    /// The group an effective user assignment came through.
    pub via_group: Option<String>,
    /// The role an implied role came from.
    pub prior_role: Option<String>,
    /// With `include_names`.
    pub names: Option<Names>,
}

/// An id with, when it was found, its name and domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub id: String,
    pub name: Option<String>,
    pub domain: Option<Box<Named>>,
}

impl Named {
    fn id(id: &str) -> Self {
        Named {
            id: id.to_owned(),
            name: None,
            domain: None,
        }
    }
}

/// The names of an assignment's role, actor and (project or domain) target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub role: Named,
    pub actor: Named,
    pub target: Named,
}

/// Domains looked up once per listing.
#[derive(Default)]
struct Domains(HashMap<String, Named>);

impl Domains {
    async fn get(&mut self, identity: &Identity, id: &str) -> Result<Box<Named>> {
        if let Some(d) = self.0.get(id) {
            return Ok(Box::new(d.clone()));
        }
        let named = match store::projects::get_domain(&identity.pool, id).await? {
            Some(d) => Named {
                id: d.id,
                name: Some(d.name),
                domain: None,
            },
            None => Named::id(id),
        };
        self.0.insert(id.to_owned(), named.clone());
        Ok(Box::new(named))
    }
}

impl Identity {
    pub async fn list_role_assignments(
        &self,
        ctx: &AuthContext,
        query: AssignmentQuery,
    ) -> Result<Vec<RoleAssignment>> {
        enforce(
            ctx,
            "identity:list_role_assignments",
            Target {
                domain_id: query.domain_id.as_deref(),
                ..Target::default()
            },
        )?;
        if query.effective && query.group_id.is_some() {
            return Err(Error::validation(
                "'effective' cannot be combined with 'group.id'.",
            ));
        }
        if query.user_id.is_some() && query.group_id.is_some() {
            return Err(Error::validation(
                "Specify only one of 'user.id' and 'group.id'.",
            ));
        }
        let scopes = [
            query.project_id.map(|id| (TargetType::Project, Some(id))),
            query.domain_id.map(|id| (TargetType::Domain, Some(id))),
            query
                .system
                .then(|| (TargetType::System, Some(SYSTEM_ALL.to_owned()))),
        ];
        let mut targets = scopes.into_iter().flatten();
        let target = targets.next();
        if targets.next().is_some() {
            return Err(Error::validation("Specify only one scope filter."));
        }
        if query.inherited {
            return Ok(Vec::new());
        }
        let filter = AssignmentFilter {
            actor: match (&query.group_id, query.effective) {
                (Some(g), _) => Some((ActorType::Group, g.clone())),
                _ => None,
            },
            target,
            role_id: if query.effective {
                None
            } else {
                query.role_id.clone()
            },
        };
        let mut rows: Vec<RoleAssignment> = store::assignments::list(&self.pool, &filter)
            .await?
            .into_iter()
            .map(|assignment| RoleAssignment {
                assignment,
                via_group: None,
                prior_role: None,
                names: None,
            })
            .collect();
        if query.effective {
            rows = self.expand_assignments(rows).await?;
        }
        rows.retain(|r| {
            query.user_id.as_ref().is_none_or(|u| {
                r.assignment.actor_type == ActorType::User && &r.assignment.actor_id == u
            }) && query
                .role_id
                .as_ref()
                .is_none_or(|id| &r.assignment.role_id == id)
        });
        if query.include_names {
            let mut domains = Domains::default();
            for row in &mut rows {
                row.names = Some(self.names(&row.assignment, &mut domains).await?);
            }
        }
        Ok(rows)
    }

    /// Replaces group assignments by their members' and adds implied roles.
    async fn expand_assignments(&self, rows: Vec<RoleAssignment>) -> Result<Vec<RoleAssignment>> {
        let mut users = Vec::new();
        for row in rows {
            if row.assignment.actor_type == ActorType::Group {
                for member in
                    store::groups::member_ids(&self.pool, &row.assignment.actor_id).await?
                {
                    users.push(RoleAssignment {
                        assignment: Assignment {
                            actor_type: ActorType::User,
                            actor_id: member,
                            ..row.assignment.clone()
                        },
                        via_group: Some(row.assignment.actor_id.clone()),
                        prior_role: None,
                        names: None,
                    });
                }
            } else {
                users.push(row);
            }
        }
        let graph = self.role_graph().await?;
        let mut out: Vec<RoleAssignment> = Vec::new();
        for row in users {
            for implied in graph.expand([row.assignment.role_id.clone()]) {
                let derived = RoleAssignment {
                    assignment: Assignment {
                        role_id: implied.id.clone(),
                        ..row.assignment.clone()
                    },
                    via_group: row.via_group.clone(),
                    prior_role: (implied.id != row.assignment.role_id)
                        .then(|| row.assignment.role_id.clone()),
                    names: None,
                };
                if !out.iter().any(|o| o.assignment == derived.assignment) {
                    out.push(derived);
                }
            }
        }
        Ok(out)
    }

    async fn names(&self, a: &Assignment, domains: &mut Domains) -> Result<Names> {
        let role = match store::roles::get(&self.pool, &a.role_id).await? {
            Some(Role {
                id,
                name,
                domain_id,
                ..
            }) => Named {
                id,
                name: Some(name),
                domain: match domain_id {
                    Some(d) => Some(domains.get(self, &d).await?),
                    None => None,
                },
            },
            None => Named::id(&a.role_id),
        };
        let actor = match a.actor_type {
            ActorType::User => store::users::get(&self.pool, &a.actor_id)
                .await?
                .map(|u| (u.id, u.name, u.domain_id)),
            ActorType::Group => store::groups::get(&self.pool, &a.actor_id)
                .await?
                .map(|g| (g.id, g.name, g.domain_id)),
        };
        let actor = match actor {
            Some((id, name, domain_id)) => Named {
                id,
                name: Some(name),
                domain: Some(domains.get(self, &domain_id).await?),
            },
            None => Named::id(&a.actor_id),
        };
        let target = match a.target_type {
            TargetType::Domain => *domains.get(self, &a.target_id).await?,
            TargetType::Project => {
                match store::projects::get_project(&self.pool, &a.target_id).await? {
                    Some(p) => Named {
                        id: p.id,
                        name: Some(p.name),
                        domain: Some(domains.get(self, &p.domain_id).await?),
                    },
                    None => Named::id(&a.target_id),
                }
            }
            TargetType::System => Named::id(&a.target_id),
        };
        Ok(Names {
            role,
            actor,
            target,
        })
    }
}
