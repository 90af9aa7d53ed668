//! The wire formats of the stored timestamps (microseconds since the Unix epoch), one
//! function per format the services use, and the parser for what clients send.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

fn at(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-11-23T10:40:52Z`: Nova, Neutron and Glance.
pub fn seconds_utc(micros: i64) -> String {
    at(micros)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// `2015-11-05T21:00:33.819948Z`: Keystone.
pub fn micros_utc(micros: i64) -> String {
    at(micros)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
        .unwrap_or_default()
}

/// `2026-11-23 10:40:52`, without a zone: Neutron's agent timestamps.
pub fn seconds_naive(micros: i64) -> String {
    at(micros)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// `2026-11-23T10:40:52.000000`, without a zone: the Nova fields that are naive UTC.
pub fn micros_naive(micros: i64) -> String {
    at(micros)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]"
        ))
        .unwrap_or_default()
}

/// An RFC 3339 timestamp a client sent, in microseconds; one without a zone is UTC.
pub fn parse(text: &str) -> Option<i64> {
    let zoned = text.ends_with('Z')
        || text.contains('+')
        || text.get(10..).is_some_and(|t| t.contains('-'));
    let with_zone = if zoned {
        text.to_owned()
    } else {
        format!("{text}Z")
    };
    OffsetDateTime::parse(&with_zone, &Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1000).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_services_format() {
        let t = 1_446_757_233_819_948; // 2015-11-05T21:00:33.819948Z
        assert_eq!(seconds_utc(t), "2015-11-05T21:00:33Z");
        assert_eq!(micros_utc(t), "2015-11-05T21:00:33.819948Z");
        assert_eq!(micros_naive(t), "2015-11-05T21:00:33.819948");
        assert_eq!(parse("2015-11-05T21:00:33.819948Z"), Some(t));
        assert_eq!(parse("2015-11-05T21:00:33.819948"), Some(t));
        assert_eq!(parse("2015-11-05T22:00:33.819948+01:00"), Some(t));
        assert_eq!(parse("yesterday"), None);
    }
}
