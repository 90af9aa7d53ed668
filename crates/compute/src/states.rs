//! Nova's server state machine: `vm_state` (what the server is), `task_state` (what is being
//! done to it), the `status` clients see, and which actions each state allows.

use crate::error::{Error, Result};
use crate::model::Server;

onestack_api::wire_enum! {
    /// Nova's `vm_state`: what the server is.
    VmState {
        Building = "building",
        Active = "active",
        Stopped = "stopped",
        Paused = "paused",
        Suspended = "suspended",
        Rescued = "rescued",
        Resized = "resized",
        Error = "error",
    }
}

onestack_api::wire_enum! {
    /// Nova's `task_state`: what is being done to the server.
    TaskState {
        Scheduling = "scheduling",
        Spawning = "spawning",
        PoweringOff = "powering-off",
        PoweringOn = "powering-on",
        Rebooting = "rebooting",
        RebootingHard = "rebooting_hard",
        Pausing = "pausing",
        Unpausing = "unpausing",
        Suspending = "suspending",
        Resuming = "resuming",
        Rescuing = "rescuing",
        Unrescuing = "unrescuing",
        ResizePrep = "resize_prep",
        // A cold migration's halves: the old host stops the guest and hands over its disk;
        // the new host builds the guest from that disk.
        ResizeMigrating = "resize_migrating",
        ResizeFinish = "resize_finish",
        ResizeReverting = "resize_reverting",
        // A live migration: the new host listens, the old one sends the running guest.
        Migrating = "migrating",
        Rebuilding = "rebuilding",
        ImageSnapshot = "image_snapshot",
        Deleting = "deleting",
    }
}

/// Nova's power states, numbers on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum PowerState {
    NoState = 0,
    Running = 1,
    Paused = 3,
    Shutdown = 4,
    Crashed = 6,
    Suspended = 7,
}

impl From<PowerState> for u8 {
    fn from(state: PowerState) -> u8 {
        state as u8
    }
}

impl TryFrom<u8> for PowerState {
    type Error = String;

    fn try_from(n: u8) -> std::result::Result<Self, String> {
        Ok(match n {
            0 => PowerState::NoState,
            1 => PowerState::Running,
            3 => PowerState::Paused,
            4 => PowerState::Shutdown,
            6 => PowerState::Crashed,
            7 => PowerState::Suspended,
            other => return Err(format!("unknown power state {other}")),
        })
    }
}

/// The `status` of a server (Nova's `status_from_state`).
pub fn status(vm_state: VmState, task_state: Option<TaskState>) -> &'static str {
    use TaskState as T;
    use VmState as V;
    match (vm_state, task_state) {
        (V::Active, Some(T::Rebooting)) => "REBOOT",
        (V::Active, Some(T::RebootingHard)) => "HARD_REBOOT",
        (V::Active | V::Stopped | V::Error, Some(T::Rebuilding)) => "REBUILD",
        (V::Active | V::Stopped, Some(T::ResizePrep | T::ResizeMigrating | T::ResizeFinish)) => {
            "RESIZE"
        }
        (V::Resized, Some(T::ResizeReverting)) => "REVERT_RESIZE",
        (V::Active | V::Paused, Some(T::Migrating)) => "MIGRATING",
        (V::Building, _) => "BUILD",
        (V::Active, _) => "ACTIVE",
        (V::Stopped, _) => "SHUTOFF",
        (V::Paused, _) => "PAUSED",
        (V::Suspended, _) => "SUSPENDED",
        (V::Rescued, _) => "RESCUE",
        (V::Resized, _) => "VERIFY_RESIZE",
        (V::Error, _) => "ERROR",
    }
}

/// vm_states reported for a `status` filter value.
pub fn vm_states_for_status(status: &str) -> Vec<VmState> {
    use VmState as V;
    match status.to_ascii_uppercase().as_str() {
        "BUILD" => vec![V::Building],
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" | "REBUILD" | "RESIZE" => vec![V::Active],
        "SHUTOFF" => vec![V::Stopped],
        "PAUSED" => vec![V::Paused],
        "MIGRATING" => vec![V::Active, V::Paused],
        "SUSPENDED" => vec![V::Suspended],
        "RESCUE" => vec![V::Rescued],
        "VERIFY_RESIZE" | "REVERT_RESIZE" => vec![V::Resized],
        "ERROR" => vec![V::Error],
        _ => vec![],
    }
}

/// Fails with Nova's 409 unless the server is in one of `vm_states` with no task running
/// (or one of `tasks` when given).
pub fn check(
    server: &Server,
    action: &str,
    vm_states: &[VmState],
    tasks: Option<&[TaskState]>,
) -> Result<()> {
    if !vm_states.contains(&server.vm_state) {
        return Err(Error::wrong_state(
            action,
            &server.id,
            "vm_state",
            server.vm_state.as_str(),
        ));
    }
    let task_ok = match (server.task_state, tasks) {
        (None, _) => true,
        (Some(t), Some(allowed)) => allowed.contains(&t),
        (Some(_), None) => false,
    };
    if !task_ok {
        return Err(Error::wrong_state(
            action,
            &server.id,
            "task_state",
            server.task_state.map_or("None", TaskState::as_str),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_keep_novas_wire_strings() {
        for state in VmState::ALL {
            assert_eq!(state.as_str().parse::<VmState>(), Ok(*state));
        }
        for task in TaskState::ALL {
            let json = serde_json::to_string(task).expect("serializes");
            assert_eq!(json, format!("\"{task}\""));
            assert_eq!(serde_json::from_str::<TaskState>(&json).ok(), Some(*task));
        }
        assert_eq!(TaskState::PoweringOff.as_str(), "powering-off");
        assert_eq!(
            serde_json::to_string(&PowerState::Shutdown).ok().as_deref(),
            Some("4")
        );
        assert_eq!(
            serde_json::from_str::<PowerState>("6").ok(),
            Some(PowerState::Crashed)
        );
        assert!(serde_json::from_str::<PowerState>("2").is_err());
        assert!("flying".parse::<VmState>().is_err());
    }
}
