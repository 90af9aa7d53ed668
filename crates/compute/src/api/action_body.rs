//! Reading a server action's body (`{"<action>": <arguments>}`) into a typed
//! [`ServerAction`], at the request's microversion. Arguments that are not objects count as
//! empty, as Nova's actions without arguments take `null`.

use onestack_api::Fields;
use serde_json::Value;

use super::input::{check_name, opt_flag, string_map};
use crate::error::{Error, Result};
use crate::microversion::Version;
use crate::ops::action_input::{RebuildRequest, ServerAction};
use crate::states::VmState;

/// Attributes of a rebuild that Nova accepts and onestack has no use for.
const IGNORED_ON_REBUILD: [&str; 6] = [
    "OS-DCF:diskConfig",
    "preserve_ephemeral",
    "personality",
    "accessIPv4",
    "accessIPv6",
    "trusted_image_certificates",
];

pub(super) fn server_action(body: Value, version: Version) -> Result<ServerAction> {
    let Value::Object(map) = body else {
        return Err(Error::BadRequest(
            "The action body must be a JSON object.".into(),
        ));
    };
    let mut entries = map.into_iter();
    let (Some((action, args)), None) = (entries.next(), entries.next()) else {
        return Err(Error::BadRequest(
            "The action body must name exactly one action.".into(),
        ));
    };
    let text = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(match action.as_str() {
        "os-stop" => ServerAction::Stop,
        "os-start" => ServerAction::Start,
        "reboot" => {
            let kind = text("type")
                .map(|t| t.to_ascii_uppercase())
                .ok_or_else(|| {
                    Error::BadRequest(
                        "Invalid input for field/attribute reboot. 'type' is a required property"
                            .into(),
                    )
                })?;
            match kind.as_str() {
                "SOFT" => ServerAction::Reboot { hard: false },
                "HARD" => ServerAction::Reboot { hard: true },
                _ => {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for field/attribute type. Value: {kind}. It must be SOFT or HARD."
                    )));
                }
            }
        }
        "pause" => ServerAction::Pause,
        "unpause" => ServerAction::Unpause,
        "suspend" => ServerAction::Suspend,
        "resume" => ServerAction::Resume,
        "lock" => ServerAction::Lock {
            reason: if version.at_least(73) {
                text("locked_reason")
            } else {
                None
            },
        },
        "unlock" => ServerAction::Unlock,
        "rescue" => ServerAction::Rescue {
            image_ref: text("rescue_image_ref"),
            admin_pass: text("adminPass"),
        },
        "unrescue" => ServerAction::Unrescue,
        "resize" => {
            // A flavor id may come as a number.
            let flavor_ref = args
                .get("flavorRef")
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.as_i64().map(|n| n.to_string()))
                })
                .ok_or_else(|| {
                    Error::BadRequest(
                        "Invalid input for field/attribute resize. 'flavorRef' is a required property"
                            .into(),
                    )
                })?;
            ServerAction::Resize { flavor_ref }
        }
        "confirmResize" => ServerAction::ConfirmResize,
        "revertResize" => ServerAction::RevertResize,
        "rebuild" => ServerAction::Rebuild(rebuild(args, version)?),
        "createImage" => create_image(&args)?,
        "os-getConsoleOutput" => ServerAction::ConsoleOutput {
            lines: console_length(&args)?,
        },
        "addSecurityGroup" | "removeSecurityGroup" => {
            let name = text("name")
                .ok_or_else(|| Error::BadRequest("Security group name cannot be empty".into()))?;
            if action == "addSecurityGroup" {
                ServerAction::AddSecurityGroup { name }
            } else {
                ServerAction::RemoveSecurityGroup { name }
            }
        }
        "forceDelete" => ServerAction::ForceDelete,
        "os-resetState" => {
            let state = args.get("state").and_then(Value::as_str).unwrap_or("");
            ServerAction::ResetState {
                state: match state {
                    "active" => VmState::Active,
                    "error" => VmState::Error,
                    _ => {
                        return Err(Error::BadRequest(format!(
                            "Invalid input for field/attribute state. Value: {state}."
                        )));
                    }
                },
            }
        }
        "evacuate" => evacuate(args, version)?,
        "migrate" => migrate(args, version)?,
        "os-migrateLive" => migrate_live(args, version)?,
        _ => ServerAction::Unknown(action),
    })
}

/// `evacuate`: `host` and `adminPass`; before 2.14 `onSharedStorage` (required, and only
/// `false` is honoured: no storage is shared here), 2.29 to 2.67 `force` (the target is
/// checked all the same).
fn evacuate(args: Value, version: Version) -> Result<ServerAction> {
    let mut f = Fields::from_object(args, "evacuate")?;
    if !version.at_least(14) {
        let shared = f.opt_bool("onSharedStorage")?.ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field/attribute evacuate. 'onSharedStorage' is a required property"
                    .into(),
            )
        })?;
        if shared {
            return Err(Error::BadRequest(
                "Evacuation with shared storage is not supported: no storage is shared between hosts here.".into(),
            ));
        }
    }
    if version.at_least(29) && !version.at_least(68) {
        // The target is checked either way.
        f.opt_bool("force")?;
    }
    let mut text = |key: &str| -> Result<Option<String>> {
        match f.opt_string_max(key, 255)? {
            Some(s) if s.trim().is_empty() => Err(Error::BadRequest(format!(
                "Invalid input for field/attribute evacuate. '{key}' must not be empty."
            ))),
            other => Ok(other),
        }
    };
    let host = text("host")?;
    let admin_pass = text("adminPass")?;
    f.deny_unknown()?;
    Ok(ServerAction::Evacuate { host, admin_pass })
}

/// `migrate`: `null` (before 2.56 Nova reads nothing more), or from 2.56 an object with
/// an optional `host` (a host name, or `null` for the scheduler's pick) and nothing else.
fn migrate(args: Value, version: Version) -> Result<ServerAction> {
    if !version.at_least(56) || args.is_null() {
        return Ok(ServerAction::Migrate { host: None });
    }
    let mut f = Fields::from_object(args, "migrate")?;
    let host = f.opt_string_max("host", 255)?;
    if host.as_deref().is_some_and(|h| h.trim().is_empty()) {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute host. Value: ''. '' is too short".into(),
        ));
    }
    f.deny_unknown()?;
    Ok(ServerAction::Migrate { host })
}

/// `os-migrateLive`: `host` (a name, or `null` for the scheduler's pick) and
/// `block_migration` (a boolean; from 2.25 also `"auto"`) are required; before 2.25 so is
/// `disk_over_commit` (a boolean), and 2.30 to 2.67 take `force` (the target is checked
/// all the same). No storage is shared between hosts here, so every live migration copies
/// the disks, whatever `block_migration` says.
fn migrate_live(args: Value, version: Version) -> Result<ServerAction> {
    let mut f = Fields::from_object(args, "os-migrateLive")?;
    // Present, and a boolean (`null` is none).
    let required_flag = |f: &mut Fields, key: &str| -> Result<()> {
        match opt_flag(f, key)? {
            Some(_) => Ok(()),
            None => Err(Error::BadRequest(format!(
                "Invalid input for field/attribute os-migrateLive. '{key}' is a required boolean"
            ))),
        }
    };
    if version.at_least(25) && f.get("block_migration").is_some_and(|b| b == "auto") {
        f.ignore("block_migration");
    } else {
        required_flag(&mut f, "block_migration")?;
    }
    if !version.at_least(25) {
        required_flag(&mut f, "disk_over_commit")?;
    }
    if version.at_least(30) && !version.at_least(68) {
        f.opt_bool("force")?;
    }
    if !f.contains("host") {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute os-migrateLive. 'host' is a required property"
                .into(),
        ));
    }
    let host = f.opt_string_max("host", 255)?;
    if host.as_deref().is_some_and(|h| h.trim().is_empty()) {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute host. Value: ''. '' is too short".into(),
        ));
    }
    f.deny_unknown()?;
    Ok(ServerAction::MigrateLive { host })
}

fn rebuild(args: Value, version: Version) -> Result<RebuildRequest> {
    let mut f = Fields::from_object(args, "rebuild")?;
    let image_ref = f.opt_string("imageRef")?.ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute rebuild. 'imageRef' is a required property".into(),
        )
    })?;
    let name = f.opt_string("name")?;
    if let Some(name) = &name {
        check_name(name, "Server")?;
    }
    let metadata = f
        .take("metadata")
        .map(|m| string_map(m, "metadata"))
        .transpose()?;
    // Present and `null` removes; absent leaves as it is.
    let user_data = if version.at_least(57) && f.contains("user_data") {
        Some(f.opt_string("user_data")?)
    } else {
        None
    };
    let key_name = if version.at_least(54) && f.contains("key_name") {
        Some(f.opt_string("key_name")?)
    } else {
        None
    };
    let description = if version.at_least(19) && f.contains("description") {
        Some(f.opt_string_max("description", 255)?)
    } else {
        None
    };
    let hostname = if version.at_least(90) {
        f.opt_string("hostname")?
    } else {
        None
    };
    let admin_pass = f.opt_string("adminPass")?;
    for ignored in IGNORED_ON_REBUILD {
        f.ignore(ignored);
    }
    f.deny_unknown()?;
    Ok(RebuildRequest {
        image_ref,
        name,
        metadata,
        user_data,
        key_name,
        description,
        hostname,
        admin_pass,
    })
}

fn create_image(args: &Value) -> Result<ServerAction> {
    let name = args.get("name").and_then(Value::as_str).ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute createImage. 'name' is a required property".into(),
        )
    })?;
    check_name(name, "Image")?;
    // Image properties are strings: other values are kept as their JSON text.
    let metadata = match args.get("metadata") {
        Some(Value::Object(meta)) => meta
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), v)
            })
            .collect(),
        _ => Default::default(),
    };
    Ok(ServerAction::CreateImage {
        name: name.to_owned(),
        metadata,
    })
}

/// `length` of `os-getConsoleOutput`: a number (or numeric string) of lines, -1 for all.
fn console_length(args: &Value) -> Result<Option<usize>> {
    let length = match args.get("length") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| *n >= -1)
            .ok_or_else(|| Error::BadRequest("Invalid input for field/attribute length.".into()))?,
    };
    Ok(usize::try_from(length).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<ServerAction> {
        server_action(body, Version(90))
    }

    #[test]
    fn actions_and_their_arguments() {
        assert!(matches!(
            parse(json!({"reboot": {"type": "hard"}})).unwrap(),
            ServerAction::Reboot { hard: true }
        ));
        assert!(matches!(
            parse(json!({"resize": {"flavorRef": 2}})).unwrap(),
            ServerAction::Resize { flavor_ref } if flavor_ref == "2"
        ));
        assert!(matches!(
            parse(json!({"os-getConsoleOutput": {"length": "-1"}})).unwrap(),
            ServerAction::ConsoleOutput { lines: None }
        ));
        assert!(matches!(
            parse(json!({"os-getConsoleOutput": {"length": 5}})).unwrap(),
            ServerAction::ConsoleOutput { lines: Some(5) }
        ));
        let ServerAction::CreateImage { metadata, .. } =
            parse(json!({"createImage": {"name": "s", "metadata": {"a": 1, "b": "x"}}})).unwrap()
        else {
            panic!("not createImage");
        };
        assert_eq!(metadata["a"], "1");
        assert_eq!(metadata["b"], "x");
        let unknown = parse(json!({"explode": {}})).unwrap();
        assert_eq!(unknown.name(), "explode");
        assert_eq!(parse(json!({"os-stop": null})).unwrap().name(), "os-stop");
    }

    #[test]
    fn malformed_actions_are_refused() {
        for body in [
            json!(["pause"]),
            json!({}),
            json!({"pause": null, "suspend": null}),
            json!({"reboot": null}),
            json!({"reboot": {"type": "GENTLE"}}),
            json!({"resize": {}}),
            json!({"createImage": {}}),
            json!({"createImage": {"name": " x"}}),
            json!({"os-getConsoleOutput": {"length": -2}}),
            json!({"os-resetState": {"state": "deleted"}}),
            json!({"addSecurityGroup": {}}),
            json!({"rebuild": "x"}),
            json!({"rebuild": {}}),
            json!({"rebuild": {"imageRef": "i", "bogus": 1}}),
        ] {
            assert!(parse(body.clone()).is_err(), "{body}");
        }
    }

    #[test]
    fn a_rebuild_reads_what_its_microversion_has() {
        let body = json!({"rebuild": {"imageRef": "i", "key_name": null, "user_data": "eA==",
            "description": null, "hostname": "h", "metadata": {"k": "v"}}});
        let ServerAction::Rebuild(r) = parse(body.clone()).unwrap() else {
            panic!("not a rebuild");
        };
        assert_eq!(r.key_name, Some(None));
        assert_eq!(r.user_data, Some(Some("eA==".into())));
        assert_eq!(r.description, Some(None));
        assert_eq!(r.hostname.as_deref(), Some("h"));
        let user_data = json!({"rebuild": {"imageRef": "i", "user_data": "eA=="}});
        assert!(server_action(user_data.clone(), Version(56)).is_err());
        assert!(server_action(user_data, Version(57)).is_ok());
        let old = server_action(json!({"rebuild": {"imageRef": "i"}}), Version(1)).unwrap();
        assert!(matches!(old, ServerAction::Rebuild(r) if r.key_name.is_none()));
    }

    #[test]
    fn a_lock_reason_needs_2_73() {
        let body = json!({"lock": {"locked_reason": "why"}});
        assert!(matches!(
            server_action(body.clone(), Version(72)).unwrap(),
            ServerAction::Lock { reason: None }
        ));
        assert!(matches!(
            server_action(body, Version(73)).unwrap(),
            ServerAction::Lock { reason: Some(_) }
        ));
    }
}
