//! MAC addresses arrive as text (from the database); they are validated and normalized
//! before they reach a command line, an nft ruleset or a dnsmasq file.

use crate::error::{Error, Result};

/// `aa:bb:cc:dd:ee:ff` in lowercase, or `Error::Invalid`.
pub fn normalize(mac: &str) -> Result<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(mac.to_ascii_lowercase())
    } else {
        Err(Error::invalid("MAC address", mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses() {
        assert_eq!(
            normalize("FA:16:3E:00:aa:01").expect("valid"),
            "fa:16:3e:00:aa:01"
        );
        for bad in [
            "",
            "fa:16:3e:00:aa",
            "fa:16:3e:00:aa:0g",
            "fa-16-3e-00-aa-01",
            "fa:16:3e:00:aa:01\n",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }
}
