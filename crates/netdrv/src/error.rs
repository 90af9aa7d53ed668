use std::path::PathBuf;
use std::process::ExitStatus;

/// Everything that can go wrong while shaping the host's networking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool ran and failed; its stderr says why.
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
    /// A tool's `-j` output was not what we expected.
    #[error("unexpected output from {program}: {message}")]
    Parse { program: String, message: String },
    /// A value that would end up in a command line or nft input failed validation.
    #[error("invalid {what}: {value:?}")]
    Invalid { what: &'static str, value: String },
    /// Security groups need bridged traffic to pass the inet hooks.
    #[error("br_netfilter is not loaded (no /proc/sys/net/bridge); run `modprobe br_netfilter`")]
    NoBrNetfilter,
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

    /// Whether this is a failed command whose stderr contains `needle`; used to treat
    /// "already exists" / "does not exist" as success where that makes an operation idempotent.
    pub(crate) fn stderr_contains(&self, needle: &str) -> bool {
        matches!(self, Self::Command { stderr, .. } if stderr.contains(needle))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
