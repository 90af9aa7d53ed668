//! What the security group operations are asked to do, typed: read from a request body by
//! `api::groups`. Values are checked against each other and the database by the operations.

/// A security group to make.
#[derive(Debug)]
pub struct NewGroup {
    /// Another project than the caller's (admins only).
    pub project_id: Option<String>,
    pub name: String,
    pub description: String,
    pub tags: Option<Vec<String>>,
}

/// The changes to a security group; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// A rule to add to a group, as asked; the operation checks the values against each other
/// (direction, ethertype, protocol, ports, remote) once the group is known to be the caller's.
#[derive(Debug)]
pub struct NewRule {
    pub project_id: Option<String>,
    pub security_group_id: String,
    pub direction: Option<String>,
    pub ethertype: Option<String>,
    /// Lower case, a number as its decimal text; `None` for any protocol.
    pub protocol: Option<String>,
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: String,
}
