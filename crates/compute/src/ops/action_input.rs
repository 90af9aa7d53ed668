//! A server action (`POST /servers/{id}/action`), typed: read from its body by
//! `api::action_body` (at the request's microversion). The operation checks the server's
//! state and looks up what the action names (images, flavors, keypairs, security groups).

use std::collections::BTreeMap;

use crate::states::VmState;

/// One action with its arguments.
#[derive(Debug, Clone)]
pub enum ServerAction {
    Stop,
    Start,
    Reboot {
        hard: bool,
    },
    Pause,
    Unpause,
    Suspend,
    Resume,
    Lock {
        /// 2.73+.
        reason: Option<String>,
    },
    Unlock,
    Rescue {
        /// `None`: the server's own image.
        image_ref: Option<String>,
        /// `None`: one is generated.
        admin_pass: Option<String>,
    },
    Unrescue,
    Resize {
        /// As given: an id, a name or a link.
        flavor_ref: String,
    },
    ConfirmResize,
    RevertResize,
    Rebuild(RebuildRequest),
    CreateImage {
        /// Checked like a server's name.
        name: String,
        /// The image's extra properties (values given as other JSON are kept as its text).
        metadata: BTreeMap<String, String>,
    },
    ConsoleOutput {
        /// The last lines to show; `None`: all.
        lines: Option<usize>,
    },
    AddSecurityGroup {
        name: String,
    },
    RemoveSecurityGroup {
        name: String,
    },
    ForceDelete,
    /// `os-resetState` to `active` or `error`.
    ResetState {
        state: VmState,
    },
    /// `evacuate` (admin): rebuilds the server of a host that is down on another host.
    Evacuate {
        /// The host to rebuild it on; `None`: the scheduler picks one.
        host: Option<String>,
        /// `None`: one is generated.
        admin_pass: Option<String>,
    },
    /// `migrate` (admin): moves the server, stopped for the move, to another host (cold);
    /// confirmed or reverted like a resize.
    Migrate {
        /// 2.56+: the host to move it to; `None`: the scheduler picks one.
        host: Option<String>,
    },
    /// `os-migrateLive` (admin): moves the running or paused server to another host
    /// without stopping it, its disks copied on the way.
    MigrateLive {
        /// The host to move it to; `None`: the scheduler picks one.
        host: Option<String>,
    },
    /// An action this API does not have, refused once the server and the caller's right
    /// to act on it are known.
    Unknown(String),
}

impl ServerAction {
    /// The action's key in the body, which names its policy rule (`servers:<name>`).
    pub fn name(&self) -> &str {
        match self {
            Self::Stop => "os-stop",
            Self::Start => "os-start",
            Self::Reboot { .. } => "reboot",
            Self::Pause => "pause",
            Self::Unpause => "unpause",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Lock { .. } => "lock",
            Self::Unlock => "unlock",
            Self::Rescue { .. } => "rescue",
            Self::Unrescue => "unrescue",
            Self::Resize { .. } => "resize",
            Self::ConfirmResize => "confirmResize",
            Self::RevertResize => "revertResize",
            Self::Rebuild(_) => "rebuild",
            Self::CreateImage { .. } => "createImage",
            Self::ConsoleOutput { .. } => "os-getConsoleOutput",
            Self::AddSecurityGroup { .. } => "addSecurityGroup",
            Self::RemoveSecurityGroup { .. } => "removeSecurityGroup",
            Self::ForceDelete => "forceDelete",
            Self::ResetState { .. } => "os-resetState",
            Self::Evacuate { .. } => "evacuate",
            Self::Migrate { .. } => "migrate",
            Self::MigrateLive { .. } => "os-migrateLive",
            Self::Unknown(name) => name,
        }
    }
}

/// `rebuild`: a new image, and what else changes with it; `None` leaves an attribute as it is.
#[derive(Debug, Clone, Default)]
pub struct RebuildRequest {
    /// As given: an id or a link.
    pub image_ref: String,
    /// Checked like a create's.
    pub name: Option<String>,
    /// Replaces the server's metadata.
    pub metadata: Option<BTreeMap<String, String>>,
    /// 2.57+; `Some(None)` removes it.
    pub user_data: Option<Option<String>>,
    /// 2.54+; `Some(None)` removes the keypair.
    pub key_name: Option<Option<String>>,
    /// 2.19+; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// 2.90+.
    pub hostname: Option<String>,
    /// `None`: one is generated.
    pub admin_pass: Option<String>,
}
