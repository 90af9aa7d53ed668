//! Reading network bodies into the typed input of their operations.

use onestack_api::Fields;

use super::input;
use crate::error::Result;
use crate::ops::network_input::{NetworkUpdate, NewNetwork, ProviderRequest};

const PROVIDER: [&str; 3] = [
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
];

/// Accepted and not used: onestack has one availability zone for networks.
const IGNORED: &str = "availability_zone_hints";

pub(super) fn new_network(mut fields: Fields) -> Result<NewNetwork> {
    let new = NewNetwork {
        project_id: input::project(&mut fields)?,
        name: input::text(&mut fields, "name")?.unwrap_or_default(),
        description: input::text(&mut fields, "description")?.unwrap_or_default(),
        admin_state_up: fields.opt_bool("admin_state_up")?.unwrap_or(true),
        shared: fields.opt_bool("shared")?.unwrap_or(false),
        external: fields.opt_bool("router:external")?.unwrap_or(false),
        port_security_enabled: fields.opt_bool("port_security_enabled")?.unwrap_or(true),
        mtu: input::opt_u32(&mut fields, "mtu")?,
        tags: input::tags(&mut fields)?,
        provider: ProviderRequest {
            network_type: fields.opt_string(PROVIDER[0])?,
            physical_network: fields.opt_string(PROVIDER[1])?,
            segmentation_id: input::opt_u32(&mut fields, PROVIDER[2])?,
        },
    };
    fields.ignore(IGNORED);
    input::done(fields)?;
    Ok(new)
}

pub(super) fn network_update(mut fields: Fields) -> Result<NetworkUpdate> {
    let mut change = NetworkUpdate {
        name: input::text(&mut fields, "name")?,
        description: input::text(&mut fields, "description")?,
        admin_state_up: fields.opt_bool("admin_state_up")?,
        port_security_enabled: fields.opt_bool("port_security_enabled")?,
        shared: fields.opt_bool("shared")?,
        external: fields.opt_bool("router:external")?,
        mtu: input::opt_u32(&mut fields, "mtu")?,
        provider_attribute: None,
    };
    change.provider_attribute = PROVIDER.into_iter().find(|key| fields.take(key).is_some());
    fields.ignore(IGNORED);
    input::done(fields)?;
    Ok(change)
}
