//! Checks for every value that ends up in a path or on QEMU's command line.

use std::path::Path;

use crate::error::{Error, Result};

/// An instance id as used in paths: `^[0-9a-f-]{36}$`.
pub fn uuid(value: &str) -> Result<&str> {
    if value.len() == 36
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'a'..=b'f' | b'-'))
    {
        Ok(value)
    } else {
        Err(Error::invalid("instance uuid", value))
    }
}

/// `value` if it is 1 to `max` bytes of `[A-Za-z0-9_.-]`, else the refusal naming `what`.
fn plain_name<'a>(value: &'a str, max: usize, what: &'static str) -> Result<&'a str> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(value)
    } else {
        Err(Error::invalid(what, value))
    }
}

/// An image id used as a file name in the base cache: 1 to 128 of `[A-Za-z0-9_.-]`, not
/// starting with a dot (temp files do).
pub fn image_id(value: &str) -> Result<&str> {
    if value.starts_with('.') {
        return Err(Error::invalid("image id", value));
    }
    plain_name(value, 128, "image id")
}

/// A guest name for `-name`: 1 to 64 of `[A-Za-z0-9_.-]` (Nova's are `instance-%08x`).
pub fn guest_name(value: &str) -> Result<&str> {
    plain_name(value, 64, "guest name")
}

/// A Linux interface name: 1 to 15 bytes of `[A-Za-z0-9_.-]`, not `.` or `..`.
pub fn ifname(value: &str) -> Result<&str> {
    if value == "." || value == ".." {
        return Err(Error::invalid("interface name", value));
    }
    plain_name(value, 15, "interface name")
}

/// A unicast MAC address `xx:xx:xx:xx:xx:xx`; returned in lower case.
pub fn mac(value: &str) -> Result<String> {
    let parts: Vec<&str> = value.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    let multicast = ok && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 1);
    if ok && !multicast {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(Error::invalid("MAC address", value))
    }
}

/// A file path for QEMU's command line: absolute, and only `[A-Za-z0-9/._+@~-]` and spaces,
/// so it needs no escaping in QEMU's `key=value,...` options (no commas), cannot be read as a
/// protocol prefix (no colon) and can be single-quoted for the shell of `exec:` migration.
pub fn path(value: &Path) -> Result<&str> {
    let text = value
        .to_str()
        .ok_or_else(|| Error::invalid("path", value.to_string_lossy()))?;
    let ok = text.starts_with('/')
        && text.len() <= 4096
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'/' | b'.' | b'_' | b'+' | b'@' | b'~' | b'-' | b' ')
        })
        && !text.split('/').any(|c| c == "..");
    if ok {
        Ok(text)
    } else {
        Err(Error::invalid("path", text))
    }
}

/// A kernel command line: printable, at most 4 KiB.
pub fn kernel_cmdline(value: &str) -> Result<&str> {
    if value.len() <= 4096 && !value.chars().any(char::is_control) {
        Ok(value)
    } else {
        Err(Error::invalid("kernel command line", value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert!(uuid("0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f9").is_ok());
        assert!(uuid("0E1D2C3B-4A59-6877-8695-A4B3C2D1E0F9").is_err());
        assert!(uuid("../../../../../../../../../etc/passwd").is_err());
        assert!(uuid("0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f").is_err());
    }

    #[test]
    fn macs_and_ifnames() {
        assert_eq!(
            mac("FA:16:3E:00:11:22").ok().as_deref(),
            Some("fa:16:3e:00:11:22")
        );
        assert!(mac("fa:16:3e:00:11").is_err());
        assert!(mac("01:16:3e:00:11:22").is_err(), "multicast");
        assert!(mac("fa:16:3e:00:11:2g").is_err());
        assert!(ifname("ostp-0123456789").is_ok());
        assert!(ifname("ostp-01234567890").is_err());
        assert!(ifname("a,b").is_err());
        assert!(ifname("..").is_err());
    }

    #[test]
    fn paths() {
        assert!(path(Path::new("/var/lib/onestack/instances/x/disk")).is_ok());
        assert!(path(Path::new("/tmp/My VMs/disk")).is_ok());
        assert!(path(Path::new("relative/disk")).is_err());
        assert!(path(Path::new("/a,b/disk")).is_err());
        assert!(path(Path::new("/a/b'c")).is_err());
        assert!(path(Path::new("/a/nbd:host")).is_err());
        assert!(path(Path::new("/a/../etc")).is_err());
    }
}
