use std::path::PathBuf;
use std::process::ExitStatus;

use crate::PowerState;

/// Everything that can go wrong while driving guests.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image file `qemu-img` reads as something a guest must not get: a backing or
    /// external data file, a node other than the file itself, or a disk larger than allowed.
    #[error("image {path} refused: {why}")]
    UnsafeImage { path: PathBuf, why: String },
    /// A value that would end up in a path or a command line failed validation.
    #[error("invalid {what}: {value:?}")]
    Invalid { what: &'static str, value: String },
    /// No instance with this id on this host (or, for `start`, no saved spec).
    #[error("no instance {0} on this host")]
    NotFound(String),
    /// The guest is not in a state the operation accepts.
    #[error("instance {uuid} is {state:?}: {op} needs it {needs}")]
    WrongState {
        uuid: String,
        op: &'static str,
        state: PowerState,
        needs: &'static str,
    },
    /// A tool (`qemu-img`, `genisoimage`) ran and failed; its stderr says why.
    #[error("`{program} {}` failed ({status}): {}", args.join(" "), stderr.trim())]
    Command {
        program: String,
        args: Vec<String>,
        status: ExitStatus,
        stderr: String,
    },
    /// A tool could not be started at all (missing binary, no permission).
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// QEMU refused to start, or died while starting; `log` is the tail of its `qemu.log`.
    #[error("QEMU for {uuid} did not start: {log}")]
    Start { uuid: String, log: String },
    /// QEMU answered a QMP command with an error.
    #[error("QMP {command} failed: {class}: {desc}")]
    Qmp {
        command: String,
        class: String,
        desc: String,
    },
    /// The QMP conversation went wrong (closed socket, unexpected or oversized message).
    #[error("QMP protocol error: {0}")]
    Protocol(String),
    /// Something took longer than it may.
    #[error("timed out {0}")]
    Timeout(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(what: &'static str, value: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            value: value.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the instance is unknown on this host.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
