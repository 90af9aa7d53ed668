//! What the volume type operations are asked to do, typed: read by `api::types`.

use std::collections::BTreeMap;

/// A volume type to make.
#[derive(Debug, Default)]
pub struct NewType {
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: BTreeMap<String, String>,
}

/// The changes to a type; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct TypeUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub is_public: Option<bool>,
}
