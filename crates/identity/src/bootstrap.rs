//! First-start bootstrap, like `keystone-manage bootstrap`, and idempotent on every start:
//! what exists is left alone (a changed password is never overwritten); only what is
//! missing is created. Catalog URLs follow the public URL when it changes.

use onestack_db::Pool;

use crate::error::Result;
use crate::model::{
    ActorType, Assignment, Domain, Endpoint, Project, Region, Role, SYSTEM_ALL, Service,
    TargetType, User, new_id,
};
use crate::service::Identity;
use crate::{password, store};

pub const DEFAULT_DOMAIN: &str = "default";
/// The cloud's admin project (in the default domain): the `admin` role counts cloud-wide
/// only when scoped to it, or to the system (`AuthContext::is_admin`).
pub const ADMIN_PROJECT: &str = "admin";
pub const REGION: &str = "RegionOne";

/// A service onestack serves, to be listed in the catalog.
#[derive(Debug, Clone)]
pub struct CatalogService {
    pub service_type: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Path below the public URL, e.g. `/identity/v3`.
    pub path: &'static str,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// Set when the admin user was created by this run.
    pub admin_created: bool,
}

async fn meta(pool: &Pool, key: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await?;
    Ok(row
        .map(|r| onestack_db::RowExt::try_get::<String, _>(&r, "value"))
        .transpose()?)
}

async fn set_meta(pool: &Pool, key: &str, value: &str) -> Result<()> {
    sqlx::query("DELETE FROM meta WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await?;
    Ok(())
}

async fn ensure_role(pool: &Pool, name: &str) -> Result<Role> {
    if let Some(role) = store::roles::list(pool, Some(name), Some(None))
        .await?
        .pop()
    {
        return Ok(role);
    }
    let role = Role {
        id: new_id(),
        name: name.into(),
        domain_id: None,
        description: String::new(),
        extra: Default::default(),
    };
    store::roles::insert(pool, &role).await?;
    Ok(role)
}

async fn ensure_project(pool: &Pool, name: &str, description: &str) -> Result<Project> {
    if let Some(p) = store::projects::find_project_by_name(pool, DEFAULT_DOMAIN, name).await? {
        return Ok(p);
    }
    let p = Project {
        id: new_id(),
        name: name.into(),
        domain_id: DEFAULT_DOMAIN.into(),
        parent_id: None,
        description: description.into(),
        enabled: true,
        extra: Default::default(),
        tags: Vec::new(),
    };
    store::projects::insert_project(pool, &p).await?;
    Ok(p)
}

/// Brings the identity data to its bootstrapped state. `admin_password` is only used when
/// the admin user does not exist yet.
pub async fn run(
    identity: &Identity,
    public_url: &str,
    services: &[CatalogService],
    admin_password: &str,
) -> Result<Outcome> {
    let pool = &identity.pool;
    let mut outcome = Outcome::default();
    if store::projects::get_domain(pool, DEFAULT_DOMAIN)
        .await?
        .is_none()
    {
        let domain = Domain {
            id: DEFAULT_DOMAIN.into(),
            name: "Default".into(),
            description: "The default domain".into(),
            enabled: true,
            extra: Default::default(),
        };
        store::projects::insert_domain(pool, &domain).await?;
    }
    let admin_role = ensure_role(pool, "admin").await?;
    let member_role = ensure_role(pool, "member").await?;
    let reader_role = ensure_role(pool, "reader").await?;
    let implications = store::roles::implications(pool).await?;
    for (prior, implied) in [(&admin_role, &member_role), (&member_role, &reader_role)] {
        if !implications
            .iter()
            .any(|(p, i)| *p == prior.id && *i == implied.id)
        {
            store::roles::add_implication(pool, &prior.id, &implied.id).await?;
        }
    }
    let admin_project = ensure_project(
        pool,
        ADMIN_PROJECT,
        "Bootstrap project for initializing the cloud.",
    )
    .await?;
    ensure_project(pool, "service", "Project for the services' own users.").await?;
    let admin = match store::users::find_by_name(pool, DEFAULT_DOMAIN, "admin").await? {
        Some(user) => user,
        None => {
            let user = User {
                password_set_at: None,
                id: new_id(),
                name: "admin".into(),
                domain_id: DEFAULT_DOMAIN.into(),
                enabled: true,
                password_hash: Some(
                    password::hash(
                        admin_password.to_owned(),
                        identity.config.password_hash_rounds,
                    )
                    .await?,
                ),
                default_project_id: None,
                extra: Default::default(),
                failed_auth_count: 0,
                last_failed_auth_at: None,
            };
            store::users::insert(pool, &user).await?;
            outcome.admin_created = true;
            user
        }
    };
    for (target_type, target_id) in [
        (TargetType::Project, admin_project.id.as_str()),
        (TargetType::System, SYSTEM_ALL),
    ] {
        let grant = Assignment {
            actor_type: ActorType::User,
            actor_id: admin.id.clone(),
            target_type,
            target_id: target_id.into(),
            role_id: admin_role.id.clone(),
            inherited: false,
        };
        if outcome.admin_created || !store::assignments::exists(pool, &grant).await? {
            store::assignments::grant(pool, &grant).await?;
        }
    }
    if store::catalog::get_region(pool, REGION).await?.is_none() {
        let region = Region {
            id: REGION.into(),
            description: String::new(),
            parent_region_id: None,
            extra: Default::default(),
        };
        store::catalog::insert_region(pool, &region).await?;
    }
    sync_catalog(pool, public_url, services).await?;
    identity.changed().await;
    Ok(outcome)
}

/// Registers missing services with their three endpoints, and moves the endpoints onestack
/// registered when the public URL changed since the last start.
async fn sync_catalog(pool: &Pool, public_url: &str, services: &[CatalogService]) -> Result<()> {
    let public_url = public_url.trim_end_matches('/');
    if let Some(previous) = meta(pool, "catalog_base_url").await?
        && previous != public_url
    {
        for mut endpoint in store::catalog::list_endpoints(pool, None, None, None).await? {
            if let Some(rest) = endpoint.url.strip_prefix(&previous) {
                endpoint.url = format!("{public_url}{rest}");
                store::catalog::update_endpoint(pool, &endpoint).await?;
            }
        }
    }
    for wanted in services {
        if !store::catalog::list_services(pool, None, Some(wanted.service_type))
            .await?
            .is_empty()
        {
            continue;
        }
        let service = Service {
            id: new_id(),
            service_type: wanted.service_type.into(),
            name: wanted.name.into(),
            description: wanted.description.into(),
            enabled: true,
            extra: Default::default(),
        };
        store::catalog::insert_service(pool, &service).await?;
        for interface in ["public", "internal", "admin"] {
            let endpoint = Endpoint {
                id: new_id(),
                service_id: service.id.clone(),
                interface: interface.into(),
                url: format!("{public_url}{}", wanted.path),
                region_id: Some(REGION.into()),
                enabled: true,
                extra: Default::default(),
            };
            store::catalog::insert_endpoint(pool, &endpoint).await?;
        }
    }
    set_meta(pool, "catalog_base_url", public_url).await
}
