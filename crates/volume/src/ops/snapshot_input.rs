//! What the snapshot operations are asked to do, typed: read by `api::snapshots`.

use std::collections::BTreeMap;

/// A snapshot to take.
#[derive(Debug, Default)]
pub struct NewSnapshot {
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Take it of an in-use volume too (`force`, or 3.66).
    pub force: bool,
    pub metadata: BTreeMap<String, String>,
}

/// The changes to a snapshot; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct SnapshotUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
}
