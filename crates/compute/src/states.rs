//! Nova's server state machine: `vm_state` (what the server is), `task_state` (what is being
//! done to it), the `status` clients see, and which actions each state allows.

use crate::error::{Error, Result};
use crate::model::Server;

pub mod vm {
    pub const BUILDING: &str = "building";
    pub const ACTIVE: &str = "active";
    pub const STOPPED: &str = "stopped";
    pub const PAUSED: &str = "paused";
    pub const SUSPENDED: &str = "suspended";
    pub const RESCUED: &str = "rescued";
    pub const RESIZED: &str = "resized";
    pub const ERROR: &str = "error";
}

pub mod task {
    pub const SCHEDULING: &str = "scheduling";
    pub const SPAWNING: &str = "spawning";
    pub const POWERING_OFF: &str = "powering-off";
    pub const POWERING_ON: &str = "powering-on";
    pub const REBOOTING: &str = "rebooting";
    pub const REBOOTING_HARD: &str = "rebooting_hard";
    pub const PAUSING: &str = "pausing";
    pub const UNPAUSING: &str = "unpausing";
    pub const SUSPENDING: &str = "suspending";
    pub const RESUMING: &str = "resuming";
    pub const RESCUING: &str = "rescuing";
    pub const UNRESCUING: &str = "unrescuing";
    pub const RESIZE_PREP: &str = "resize_prep";
    pub const RESIZE_REVERTING: &str = "resize_reverting";
    pub const REBUILDING: &str = "rebuilding";
    pub const IMAGE_SNAPSHOT: &str = "image_snapshot";
    pub const DELETING: &str = "deleting";
}

/// Nova's power states.
pub mod power {
    pub const NOSTATE: u8 = 0;
    pub const RUNNING: u8 = 1;
    pub const PAUSED: u8 = 3;
    pub const SHUTDOWN: u8 = 4;
    pub const SUSPENDED: u8 = 7;
}

/// The `status` of a server (Nova's `status_from_state`).
pub fn status(vm_state: &str, task_state: Option<&str>) -> &'static str {
    match (vm_state, task_state) {
        (vm::ACTIVE, Some(task::REBOOTING)) => "REBOOT",
        (vm::ACTIVE, Some(task::REBOOTING_HARD)) => "HARD_REBOOT",
        (vm::ACTIVE | vm::STOPPED | vm::ERROR, Some(task::REBUILDING)) => "REBUILD",
        (vm::ACTIVE | vm::STOPPED, Some(task::RESIZE_PREP)) => "RESIZE",
        (vm::RESIZED, Some(task::RESIZE_REVERTING)) => "REVERT_RESIZE",
        (vm::BUILDING, _) => "BUILD",
        (vm::ACTIVE, _) => "ACTIVE",
        (vm::STOPPED, _) => "SHUTOFF",
        (vm::PAUSED, _) => "PAUSED",
        (vm::SUSPENDED, _) => "SUSPENDED",
        (vm::RESCUED, _) => "RESCUE",
        (vm::RESIZED, _) => "VERIFY_RESIZE",
        (vm::ERROR, _) => "ERROR",
        _ => "UNKNOWN",
    }
}

/// vm_states reported for a `status` filter value.
pub fn vm_states_for_status(status: &str) -> Vec<&'static str> {
    match status.to_ascii_uppercase().as_str() {
        "BUILD" => vec![vm::BUILDING],
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" | "REBUILD" | "RESIZE" => vec![vm::ACTIVE],
        "SHUTOFF" => vec![vm::STOPPED],
        "PAUSED" => vec![vm::PAUSED],
        "SUSPENDED" => vec![vm::SUSPENDED],
        "RESCUE" => vec![vm::RESCUED],
        "VERIFY_RESIZE" | "REVERT_RESIZE" => vec![vm::RESIZED],
        "ERROR" => vec![vm::ERROR],
        _ => vec![],
    }
}

/// Fails with Nova's 409 unless the server is in one of `vm_states` with no task running
/// (or one of `tasks` when given).
pub fn check(
    server: &Server,
    action: &str,
    vm_states: &[&str],
    tasks: Option<&[&str]>,
) -> Result<()> {
    if !vm_states.contains(&server.vm_state.as_str()) {
        return Err(Error::wrong_state(
            action,
            &server.id,
            "vm_state",
            &server.vm_state,
        ));
    }
    let task_ok = match (&server.task_state, tasks) {
        (None, _) => true,
        (Some(t), Some(allowed)) => allowed.contains(&t.as_str()),
        (Some(_), None) => false,
    };
    if !task_ok {
        return Err(Error::wrong_state(
            action,
            &server.id,
            "task_state",
            server.task_state.as_deref().unwrap_or("None"),
        ));
    }
    Ok(())
}
