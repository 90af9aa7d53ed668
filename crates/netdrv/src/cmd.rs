//! Running the tools (`ip`, `bridge`, `nft`, `dnsmasq`): argument vectors, never a shell.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::{Error, Result};

/// Runs `program args...` and returns its stdout, or `Error::Command` with stderr.
pub async fn run<S: AsRef<str>>(program: &str, args: &[S]) -> Result<String> {
    run_with_input(program, args, None).await
}

/// Like [`run`], writing `input` to the tool's stdin (for `nft -f -`).
pub async fn run_with_input<S: AsRef<str>>(
    program: &str,
    args: &[S],
    input: Option<&str>,
) -> Result<String> {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    tracing::debug!(program, ?args, "run");
    let spawn_err = |source| Error::Spawn {
        program: program.to_owned(),
        source,
    };
    let mut child = Command::new(program)
        .args(&args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).await.map_err(spawn_err)?;
        // Dropping stdin closes it so the tool sees end of input.
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
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

/// Parses a tool's `-j` output; an empty output counts as an empty list.
pub fn parse_json(program: &str, text: &str) -> Result<serde_json::Value> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_str(text).map_err(|e| Error::Parse {
        program: program.to_owned(),
        message: e.to_string(),
    })
}
