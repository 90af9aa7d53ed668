//! Running the tools (`qemu-img`, `genisoimage`): argument vectors, never a shell.

use std::process::Stdio;

use tokio::process::Command;

use crate::error::{Error, Result};

/// Runs `program args...` and returns its stdout, or `Error::Command` with its stderr.
pub async fn run<S: AsRef<str>>(program: &str, args: &[S]) -> Result<String> {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    tracing::debug!(program, ?args, "run");
    let out = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| Error::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            program: program.to_owned(),
            args,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
