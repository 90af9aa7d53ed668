//! Image settings, as the `[image]` section of the config file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageConfig {
    /// Largest image accepted, in bytes (Glance's image_size_cap, default 1 TiB).
    pub image_size_cap: u64,
    /// Per-project total bytes of image data, staged data and uploads under way included
    /// (Glance's `image_size_total` limit); default 1 TiB; 0 means unlimited.
    pub quota_image_size_total: u64,
    /// Per-project image count; 0 means unlimited (Glance's image_count_total quota).
    pub quota_image_count_total: u64,
    /// web-download may fetch from these networks even though they are loopback, link-local
    /// or private (CIDRs such as "10.0.0.0/8"); by default only public addresses are allowed.
    pub web_download_allowed_networks: Vec<String>,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            image_size_cap: 1 << 40,
            quota_image_size_total: 1 << 40,
            quota_image_count_total: 0,
            web_download_allowed_networks: Vec::new(),
        }
    }
}
