//! What the volume attachment operations are asked to do, typed: read from request bodies
//! by `api::volume_body` (at the request's microversion).

/// `POST /servers/{id}/os-volume_attachments`.
#[derive(Debug)]
pub struct AttachVolume {
    pub volume_id: String,
    /// 2.49+.
    pub tag: Option<String>,
    /// 2.79+.
    pub delete_on_termination: bool,
}

/// `PUT /servers/{id}/os-volume_attachments/{volume_id}`.
#[derive(Debug)]
pub struct AttachmentUpdate {
    /// Another volume than the one attached asks for a swap.
    pub volume_id: String,
    /// 2.85+.
    pub delete_on_termination: Option<bool>,
}
