//! Whose a host resource is. Two clouds (a test cloud beside a real one, two CI runs) may
//! share a host and both name their devices `os…`, so a prefix only says "some onestack".
//! Every link we create, and `lo` inside every namespace we create, carries this cloud's
//! and this host's mark as its interface alias (`ip -d link` shows it); the agent removes
//! only what carries its own mark, and never takes over a device marked by another cloud.
//! The security-group tables are named after the cloud as well.

use crate::error::{Error, Result};

/// The mark of one cloud on one host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    cloud_id: String,
    mark: String,
}

/// What every mark starts with, so a foreign mark is told apart from an operator's alias.
pub const MARK_PREFIX: &str = "onestack:";

/// How many characters of the cloud id name the nft tables (`onestack_` + these).
const TABLE_ID_CHARS: usize = 16;

fn is_safe_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Owner {
    /// `cloud_id`: lowercase hex, at least 16 characters (what `onestack` generates at first
    /// start); `host`: this host's name as the agent reports it.
    pub fn new(cloud_id: &str, host: &str) -> Result<Self> {
        let id_ok = (TABLE_ID_CHARS..=64).contains(&cloud_id.len())
            && cloud_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !id_ok {
            return Err(Error::invalid("cloud id", cloud_id));
        }
        if !is_safe_part(host, 64) {
            return Err(Error::invalid("host name for the owner mark", host));
        }
        Ok(Self {
            cloud_id: cloud_id.to_owned(),
            mark: format!("{MARK_PREFIX}{cloud_id}:{host}"),
        })
    }

    /// The interface alias every resource of ours carries.
    pub fn mark(&self) -> &str {
        &self.mark
    }

    /// Whether an alias as found on a device is ours.
    pub fn owns(&self, alias: Option<&str>) -> bool {
        alias == Some(self.mark.as_str())
    }

    /// Whether an alias says the device belongs to some other cloud (or another host of ours).
    pub fn is_foreign(&self, alias: Option<&str>) -> bool {
        alias.is_some_and(|a| a.starts_with(MARK_PREFIX) && a != self.mark)
    }

    /// This cloud's nft table name (both families), at most 32 characters of `[a-z0-9_]`.
    pub fn table(&self) -> String {
        Self::table_name(&self.cloud_id)
    }

    /// The nft table name of the cloud `cloud_id` (see [`Owner::new`]).
    pub fn table_name(cloud_id: &str) -> String {
        let stem = cloud_id.get(..TABLE_ID_CHARS).unwrap_or(cloud_id);
        format!("onestack_{stem}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn marks_say_cloud_and_host() {
        let o = Owner::new(ID, "node-1").expect("valid");
        assert_eq!(o.mark(), format!("onestack:{ID}:node-1"));
        assert!(o.owns(Some(o.mark())));
        assert!(!o.owns(None));
        assert!(!o.is_foreign(None));
        assert!(!o.is_foreign(Some("uplink to rack 3")));
        assert!(o.is_foreign(Some(&format!("onestack:{ID}:node-2"))));
        assert!(o.is_foreign(Some("onestack:ffffffffffffffff:node-1")));
        assert_eq!(o.table(), "onestack_0123456789abcdef");
        assert!(crate::firewall::Firewall::new(&o.table()).is_ok());
    }

    #[test]
    fn refuses_what_would_not_fit_a_command_line() {
        for (id, host) in [
            ("short", "h"),
            ("0123456789ABCDEF", "h"),
            (ID, ""),
            (ID, "a b"),
            (ID, "x;rm"),
        ] {
            assert!(Owner::new(id, host).is_err(), "{id:?} {host:?}");
        }
    }
}
