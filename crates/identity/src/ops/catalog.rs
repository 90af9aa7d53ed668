//! The service catalog: regions (a tree), services, and their endpoints.

use std::collections::HashSet;

use onestack_api::AuthContext;

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{Endpoint, Extra, Region, Service, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;

const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

#[derive(Debug)]
pub struct NewRegion {
    /// From the path or the body (which must agree); a new id without either.
    pub id: Option<String>,
    pub parent_region_id: Option<String>,
    pub attributes: Parsed<RegionAttributes>,
}

#[derive(Debug)]
pub struct RegionAttributes {
    pub description: String,
    pub extra: Extra,
}

/// The attributes a PATCH sets; `None` leaves one as it is.
#[derive(Debug)]
pub struct RegionUpdate {
    pub description: Option<String>,
    /// `Some(None)` makes the region top-level.
    pub parent_region_id: Option<Option<String>>,
    pub extra: Extra,
}

/// `GET /v3/services`'s filters.
#[derive(Debug, Default)]
pub struct ServiceQuery {
    pub name: Option<String>,
    pub service_type: Option<String>,
}

#[derive(Debug)]
pub struct NewService {
    pub service_type: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

/// The attributes a PATCH sets; `None` leaves one as it is.
#[derive(Debug)]
pub struct ServiceUpdate {
    pub service_type: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub extra: Extra,
}

/// `GET /v3/endpoints`'s filters.
#[derive(Debug, Default)]
pub struct EndpointQuery {
    pub interface: Option<String>,
    pub service_id: Option<String>,
    pub region_id: Option<String>,
}

#[derive(Debug)]
pub struct NewEndpoint {
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    pub extra: Extra,
}

/// The attributes a PATCH sets; `None` leaves one as it is.
#[derive(Debug)]
pub struct EndpointUpdate {
    pub service_id: Option<String>,
    pub interface: Option<String>,
    pub url: Option<String>,
    /// `Some(None)` clears the region.
    pub region_id: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub extra: Extra,
}

fn check_interface(interface: &str) -> Result<()> {
    if INTERFACES.contains(&interface) {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "Invalid interface '{interface}': use public, internal or admin."
        )))
    }
}

fn check_url(url: &str) -> Result<()> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "Invalid endpoint URL '{url}': it must start with http:// or https://."
        )))
    }
}

impl Identity {
    async fn region(&self, id: &str) -> Result<Region> {
        store::catalog::get_region(&self.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("region", id))
    }

    async fn service(&self, id: &str) -> Result<Service> {
        store::catalog::get_service(&self.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("service", id))
    }

    async fn endpoint(&self, id: &str) -> Result<Endpoint> {
        store::catalog::get_endpoint(&self.pool, id)
            .await?
            .ok_or_else(|| Error::not_found("endpoint", id))
    }

    async fn region_exists(&self, id: &str) -> Result<bool> {
        Ok(store::catalog::get_region(&self.pool, id).await?.is_some())
    }

    pub async fn list_regions(
        &self,
        ctx: &AuthContext,
        parent_region_id: Option<&str>,
    ) -> Result<Vec<Region>> {
        enforce(ctx, "identity:list_regions", Target::default())?;
        Ok(store::catalog::list_regions(&self.pool, parent_region_id).await?)
    }

    pub async fn get_region(&self, ctx: &AuthContext, id: &str) -> Result<Region> {
        enforce(ctx, "identity:get_region", Target::default())?;
        self.region(id).await
    }

    pub async fn create_region(
        &self,
        ctx: &AuthContext,
        input: Parsed<NewRegion>,
    ) -> Result<Region> {
        enforce(ctx, "identity:create_region", Target::default())?;
        let input = input?;
        if let Some(parent) = &input.parent_region_id
            && !self.region_exists(parent).await?
        {
            return Err(Error::validation(format!(
                "Could not find parent region: {parent}."
            )));
        }
        let attributes = input.attributes?;
        let r = Region {
            id: input.id.unwrap_or_else(new_id),
            description: attributes.description,
            parent_region_id: input.parent_region_id,
            extra: attributes.extra,
        };
        if self.region_exists(&r.id).await? {
            return Err(Error::conflict(
                "region",
                format!("a region with id {} already exists", r.id),
            ));
        }
        store::catalog::insert_region(&self.pool, &r).await?;
        Ok(r)
    }

    pub async fn update_region(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<RegionUpdate>,
    ) -> Result<Region> {
        enforce(ctx, "identity:update_region", Target::default())?;
        let mut r = self.region(id).await?;
        let input = input?;
        if let Some(description) = input.description {
            r.description = description;
        }
        if let Some(parent) = input.parent_region_id {
            self.check_new_parent(&r, parent.as_deref()).await?;
            r.parent_region_id = parent;
        }
        r.extra.extend(input.extra);
        store::catalog::update_region(&self.pool, &r).await?;
        Ok(r)
    }

    /// The new parent must exist and may not descend from the region (Keystone's
    /// CircularRegionHierarchyError).
    async fn check_new_parent(&self, r: &Region, parent: Option<&str>) -> Result<()> {
        if let Some(p) = parent
            && (p == r.id || !self.region_exists(p).await?)
        {
            return Err(Error::validation(format!("Invalid parent region: {p}.")));
        }
        let mut ancestor = parent.map(str::to_owned);
        let mut seen = HashSet::new();
        while let Some(a) = ancestor {
            if a == r.id || !seen.insert(a.clone()) {
                return Err(Error::validation(format!(
                    "The specified parent region {} would create a circular region hierarchy.",
                    parent.unwrap_or_default()
                )));
            }
            ancestor = store::catalog::get_region(&self.pool, &a)
                .await?
                .and_then(|x| x.parent_region_id);
        }
        Ok(())
    }

    pub async fn delete_region(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_region", Target::default())?;
        self.region(id).await?;
        if store::catalog::region_in_use(&self.pool, id).await? {
            return Err(Error::ForbiddenBecause(format!(
                "Unable to delete region {id} because it has child regions or endpoints."
            )));
        }
        store::catalog::delete_region(&self.pool, id).await?;
        Ok(())
    }

    pub async fn list_services(
        &self,
        ctx: &AuthContext,
        query: ServiceQuery,
    ) -> Result<Vec<Service>> {
        enforce(ctx, "identity:list_services", Target::default())?;
        Ok(store::catalog::list_services(
            &self.pool,
            query.name.as_deref(),
            query.service_type.as_deref(),
        )
        .await?)
    }

    pub async fn get_service(&self, ctx: &AuthContext, id: &str) -> Result<Service> {
        enforce(ctx, "identity:get_service", Target::default())?;
        self.service(id).await
    }

    pub async fn create_service(
        &self,
        ctx: &AuthContext,
        input: Parsed<NewService>,
    ) -> Result<Service> {
        enforce(ctx, "identity:create_service", Target::default())?;
        let input = input?;
        let s = Service {
            id: new_id(),
            service_type: input.service_type,
            name: input.name,
            description: input.description,
            enabled: input.enabled,
            extra: input.extra,
        };
        store::catalog::insert_service(&self.pool, &s).await?;
        Ok(s)
    }

    pub async fn update_service(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<ServiceUpdate>,
    ) -> Result<Service> {
        enforce(ctx, "identity:update_service", Target::default())?;
        let mut s = self.service(id).await?;
        let input = input?;
        if let Some(service_type) = input.service_type {
            s.service_type = service_type;
        }
        if let Some(name) = input.name {
            s.name = name;
        }
        if let Some(description) = input.description {
            s.description = description;
        }
        if let Some(enabled) = input.enabled {
            s.enabled = enabled;
        }
        s.extra.extend(input.extra);
        store::catalog::update_service(&self.pool, &s).await?;
        Ok(s)
    }

    pub async fn delete_service(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_service", Target::default())?;
        self.service(id).await?;
        store::catalog::delete_service(&self.pool, id).await?;
        Ok(())
    }

    pub async fn list_endpoints(
        &self,
        ctx: &AuthContext,
        query: EndpointQuery,
    ) -> Result<Vec<Endpoint>> {
        enforce(ctx, "identity:list_endpoints", Target::default())?;
        Ok(store::catalog::list_endpoints(
            &self.pool,
            query.interface.as_deref(),
            query.service_id.as_deref(),
            query.region_id.as_deref(),
        )
        .await?)
    }

    pub async fn get_endpoint(&self, ctx: &AuthContext, id: &str) -> Result<Endpoint> {
        enforce(ctx, "identity:get_endpoint", Target::default())?;
        self.endpoint(id).await
    }

    /// An endpoint's interface and URL are well formed, and its service and region exist.
    async fn check_endpoint(&self, e: &Endpoint) -> Result<()> {
        check_interface(&e.interface)?;
        check_url(&e.url)?;
        if store::catalog::get_service(&self.pool, &e.service_id)
            .await?
            .is_none()
        {
            return Err(Error::validation(format!(
                "Could not find service: {}.",
                e.service_id
            )));
        }
        if let Some(region) = &e.region_id
            && !self.region_exists(region).await?
        {
            return Err(Error::validation(format!(
                "Could not find region: {region}."
            )));
        }
        Ok(())
    }

    pub async fn create_endpoint(
        &self,
        ctx: &AuthContext,
        input: Parsed<NewEndpoint>,
    ) -> Result<Endpoint> {
        enforce(ctx, "identity:create_endpoint", Target::default())?;
        let input = input?;
        let e = Endpoint {
            id: new_id(),
            service_id: input.service_id,
            interface: input.interface,
            url: input.url,
            region_id: input.region_id,
            enabled: input.enabled,
            extra: input.extra,
        };
        self.check_endpoint(&e).await?;
        store::catalog::insert_endpoint(&self.pool, &e).await?;
        Ok(e)
    }

    pub async fn update_endpoint(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<EndpointUpdate>,
    ) -> Result<Endpoint> {
        enforce(ctx, "identity:update_endpoint", Target::default())?;
        let mut e = self.endpoint(id).await?;
        let input = input?;
        if let Some(service_id) = input.service_id {
            e.service_id = service_id;
        }
        if let Some(interface) = input.interface {
            e.interface = interface;
        }
        if let Some(url) = input.url {
            e.url = url;
        }
        if let Some(region_id) = input.region_id {
            e.region_id = region_id;
        }
        if let Some(enabled) = input.enabled {
            e.enabled = enabled;
        }
        e.extra.extend(input.extra);
        self.check_endpoint(&e).await?;
        store::catalog::update_endpoint(&self.pool, &e).await?;
        Ok(e)
    }

    pub async fn delete_endpoint(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_endpoint", Target::default())?;
        self.endpoint(id).await?;
        store::catalog::delete_endpoint(&self.pool, id).await?;
        Ok(())
    }
}
