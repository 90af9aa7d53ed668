//! The web-download import method and its guard against server-side request forgery: a
//! tenant names a URL and the image service fetches it from inside the cloud, so the URL
//! must not lead to the cloud's own network or to this host. Every address the name
//! resolves to is checked (and the connection pinned to those addresses), redirects are not
//! followed, no proxy from the environment is used, and credentials in the URL never reach
//! a log line or an error message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::model::Image;
use crate::service::Images;

/// Addresses web-download refuses unless the configuration allows them.
pub(super) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || a == 0 // 0.0.0.0/8: "this network", which Linux connects to the host
                || a == 100 && (b & 0xc0) == 64 // 100.64.0.0/10, carrier-grade NAT
                || a == 192 && b == 0 && v4.octets()[2] == 0 // 192.0.0.0/24, IETF
                || a == 198 && (b & 0xfe) == 18 // 198.18.0.0/15, benchmarking
                || a >= 224 // multicast and reserved
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || s[0] == 0x64 && s[1] == 0xff9b // NAT64, 64:ff9b::/96 and 64:ff9b:1::/48
                || s[0] == 0x2002 // 6to4, 2002::/16: an IPv4 address inside
                || s[0] == 0x2001 && s[1] == 0 // Teredo, 2001::/32: an IPv4 address inside
                || s[..6] == [0; 6] // IPv4-compatible (::a.b.c.d) and ::/96
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// The host's own IPv4 addresses: the `host LOCAL` entries of the kernel's FIB.
fn parse_fib_trie(text: &str) -> Vec<IpAddr> {
    let mut last: Option<Ipv4Addr> = None;
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(address) = line.strip_prefix("|-- ") {
            last = address.parse().ok();
        } else if line.ends_with("host LOCAL")
            && let Some(address) = last
            && !found.contains(&IpAddr::V4(address))
        {
            found.push(IpAddr::V4(address));
        }
    }
    found
}

/// The host's own IPv6 addresses, one per line of `/proc/net/if_inet6` (32 hex digits first).
fn parse_if_inet6(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let hex = line.split_whitespace().next()?;
            let bits = u128::from_str_radix(hex, 16).ok()?;
            (hex.len() == 32).then(|| IpAddr::V6(Ipv6Addr::from(bits)))
        })
        .collect()
}

/// Every address of every interface of this host (in its network namespace).
fn local_addresses() -> Vec<IpAddr> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let mut addresses = parse_fib_trie(&read("/proc/net/fib_trie"));
    addresses.extend(parse_if_inet6(&read("/proc/net/if_inet6")));
    addresses
}

/// The URL with any user name and password replaced by `***`, for messages and logs; works on
/// text that does not parse as a URL too.
pub(super) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.chars().take(256).collect();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let shown = match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_owned(),
    };
    shown.chars().take(256).collect()
}

/// Whether web-download must not connect to `ip`: internal, or one of this host's own
/// `local` addresses (a public one reaches every service listening on the host), unless the
/// operator allowed its network.
fn refused(ip: IpAddr, local: &[IpAddr], allowed: &[ipnet::IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    (is_internal(ip) || local.contains(&ip)) && !allowed.iter().any(|n| n.contains(&ip))
}

/// A checked URL and the addresses the fetch may connect to.
pub(super) struct Target {
    url: reqwest::Url,
    addrs: Vec<SocketAddr>,
    shown: String,
}

/// Resolves the URL's host and checks every address against the SSRF rules.
pub(super) async fn check(images: &Images, url: &str) -> Result<Target> {
    let shown = redact(url);
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::BadRequest(format!("Invalid uri '{shown}': {e}.")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::BadRequest(
            "web-download takes http:// or https:// URIs only.".into(),
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| Error::BadRequest(format!("The uri '{shown}' has no host.")))?
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host_for_lookup = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host_for_lookup.as_str(), port))
        .await
        .map_err(|e| Error::BadRequest(format!("Cannot resolve '{host}': {e}.")))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::BadRequest(format!("Cannot resolve '{host}'.")));
    }
    let allowed: Vec<ipnet::IpNet> = images
        .config
        .web_download_allowed_networks
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let local = tokio::task::spawn_blocking(local_addresses)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    for addr in &addrs {
        let ip = addr.ip();
        if refused(ip, &local, &allowed) {
            return Err(Error::BadRequest(format!(
                "The uri '{shown}' points at an internal address or one of this host's ({ip}); \
                 web-download refuses it unless [image] web_download_allowed_networks includes it."
            )));
        }
    }
    Ok(Target {
        url: parsed,
        addrs,
        shown,
    })
}

/// Fetches a checked URL into the image and activates it.
pub(super) async fn fetch(images: &Images, image: &Image, target: Target) -> Result<Image> {
    let Target { url, addrs, shown } = target;
    let host = url.host_str().unwrap_or_default().to_owned();
    // Pin the connection to the addresses that were checked, so DNS cannot change under us;
    // redirects are not followed, as they could lead anywhere; a proxy named in the
    // environment would fetch from somewhere else than what was checked.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .resolve_to_addrs(&host, &addrs)
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| Error::BadRequest(format!("Cannot fetch {shown}: {}", e.without_url())))?;
    if !response.status().is_success() {
        return Err(Error::BadRequest(format!(
            "Fetching {shown} answered {}.",
            response.status()
        )));
    }
    let expected = response.content_length();
    let stream = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(|e| e.without_url()));
    let received = images.receive(image, stream.boxed(), expected).await?;
    images.activate(image.clone(), received, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "198.18.0.1",
            "192.0.0.8",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fec0::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "ff02::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "2a00:1450::1",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn finds_the_hosts_own_addresses() {
        let fib = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
                   |-- 203.0.113.7\n        /32 host LOCAL\n     |-- 203.0.113.255\n\
                   /32 link BROADCAST\nLocal:\n     |-- 203.0.113.7\n        /32 host LOCAL\n\
                   |-- 127.0.0.1\n        /32 host LOCAL\n";
        assert_eq!(
            parse_fib_trie(fib),
            vec![
                "203.0.113.7".parse::<IpAddr>().unwrap(),
                "127.0.0.1".parse().unwrap()
            ]
        );
        let inet6 = "00000000000000000000000000000001 01 80 10 80       lo\n\
                     20010db8000000000000000000000042 02 40 00 00     eth0\n";
        assert_eq!(
            parse_if_inet6(inet6),
            vec![
                "::1".parse::<IpAddr>().unwrap(),
                "2001:db8::42".parse().unwrap()
            ]
        );
        // This host's loopback is always among them (where /proc is mounted).
        if std::path::Path::new("/proc/net/fib_trie").exists() {
            assert!(local_addresses().contains(&"127.0.0.1".parse().unwrap()));
        }
    }

    #[test]
    fn the_hosts_own_public_address_is_refused_unless_allowed() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let local = [ip("203.0.113.7"), ip("2001:db8::42")];
        assert!(refused(ip("203.0.113.7"), &local, &[]));
        assert!(refused(ip("::ffff:203.0.113.7"), &local, &[]));
        assert!(refused(ip("2001:db8::42"), &local, &[]));
        assert!(!refused(ip("203.0.113.8"), &local, &[]));
        let allowed = ["203.0.113.0/24".parse().unwrap()];
        assert!(!refused(ip("203.0.113.7"), &local, &allowed));
        assert!(refused(ip("10.0.0.1"), &local, &allowed));
    }

    #[test]
    fn credentials_in_a_url_are_never_shown() {
        assert_eq!(
            redact("http://user:secret@example.com/a@b?c=d"),
            "http://***@example.com/a@b?c=d"
        );
        assert_eq!(redact("https://tok@host:8080"), "https://***@host:8080");
        assert_eq!(redact("http://example.com/x@y"), "http://example.com/x@y");
        assert_eq!(redact("not a url"), "not a url");
        assert!(!redact("http://a:b:c@@[::1/").contains('b'));
    }
}
