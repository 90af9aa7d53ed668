//! Resources stored as JSON documents in a `doc` column beside the columns queries select
//! on: encoding and decoding them, with one error type each service maps to its own.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored document that does not decode (or a value that does not encode): a bug or a
/// damaged database, never the client's doing.
#[derive(Debug, thiserror::Error)]
#[error("stored document: {0}")]
pub struct DocError(#[from] serde_json::Error);

pub fn encode<T: Serialize>(doc: &T) -> Result<String, DocError> {
    Ok(serde_json::to_string(doc)?)
}

pub fn decode<T: DeserializeOwned>(doc: &str) -> Result<T, DocError> {
    Ok(serde_json::from_str(doc)?)
}
