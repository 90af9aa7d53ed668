//! A small QMP client: one JSON object per line over QEMU's unix socket.
//!
//! QEMU serves one QMP client per socket at a time, so the driver connects per operation and
//! serializes operations per guest. Commands carry an `id` that the answer echoes; events that
//! arrive in between are kept (bounded) for whoever wants them. The typed answers ignore
//! fields they do not know and default the ones that are missing, so newer and older QEMUs
//! parse alike.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::error::{Error, Result};

/// The largest message we accept (QEMU's biggest answers are a few hundred KiB).
const MAX_LINE: u64 = 16 << 20;
/// How many events are kept between [`Qmp::take_events`] calls.
const MAX_EVENTS: usize = 256;

/// The greeting QEMU sends on connect.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Greeting {
    #[serde(rename = "QMP", default)]
    pub qmp: GreetingBody,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GreetingBody {
    #[serde(default)]
    pub version: Value,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// An asynchronous event (`SHUTDOWN`, `STOP`, `RESUME`, `MIGRATION`, ...).
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub event: String,
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub timestamp: Value,
}

/// The answer to `query-status`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusInfo {
    /// `running`, `paused`, `inmigrate`, `postmigrate`, `shutdown`, `guest-panicked`, ...
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub running: bool,
}

/// The answer to `query-migrate` (only what we use).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MigrationInfo {
    /// `setup`, `active`, `completed`, `failed`, `cancelled`, ...; absent before any migration.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(rename = "error-desc", default)]
    pub error_desc: Option<String>,
    #[serde(rename = "total-time", default)]
    pub total_time_ms: Option<u64>,
    /// How long the guest was stopped for the switch (a finished live migration).
    #[serde(rename = "downtime", default)]
    pub downtime_ms: Option<u64>,
    #[serde(default)]
    pub ram: Option<RamInfo>,
}

/// `query-migrate`'s memory figures (only what we use).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RamInfo {
    #[serde(default)]
    pub transferred: u64,
}

/// One QMP session, in command mode once [`Qmp::connect`] returns.
pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    events: Vec<Event>,
    greeting: Greeting,
    timeout: Duration,
}

impl Qmp {
    /// Connects, reads the greeting and leaves capabilities negotiation; every later
    /// command must answer within `timeout`.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Self> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| Error::Timeout(format!("connecting to {}", path.display())))?
            .map_err(|e| Error::io(path, e))?;
        let (read, writer) = stream.into_split();
        let mut qmp = Self {
            reader: BufReader::new(read),
            writer,
            next_id: 1,
            events: Vec::new(),
            greeting: Greeting::default(),
            timeout,
        };
        let greeting = tokio::time::timeout(timeout, qmp.read_message())
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "waiting for the QMP greeting on {}",
                    path.display()
                ))
            })??;
        if greeting.get("QMP").is_none() {
            return Err(Error::Protocol(format!(
                "expected a greeting, got {greeting}"
            )));
        }
        qmp.greeting = serde_json::from_value(greeting).unwrap_or_default();
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// Events received so far, oldest first (at most the last 256).
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Runs `command` and returns its `return` value.
    pub async fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line = request.to_string();
        line.push('\n');
        tracing::trace!(command, id, "qmp execute");
        let timeout = self.timeout;
        let exchange = async {
            self.writer
                .write_all(line.as_bytes())
                .await
                .map_err(|e| Error::Protocol(format!("writing {command}: {e}")))?;
            loop {
                let message = self.read_message().await?;
                if message.get("event").is_some() {
                    self.keep_event(message);
                    continue;
                }
                if message.get("id") != Some(&json!(id)) {
                    tracing::debug!(%message, "QMP answer for another id ignored");
                    continue;
                }
                if let Some(value) = message.get("return") {
                    return Ok(value.clone());
                }
                if let Some(error) = message.get("error") {
                    let text = |key: &str| {
                        error
                            .get(key)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    return Err(Error::Qmp {
                        command: command.to_owned(),
                        class: text("class"),
                        desc: text("desc"),
                    });
                }
                return Err(Error::Protocol(format!(
                    "unexpected answer to {command}: {message}"
                )));
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Error::Timeout(format!("waiting for QMP {command}")))?
    }

    /// Waits up to `timeout` for the event `name` whose data `matches` (events received
    /// during earlier commands count); other events are kept for [`Qmp::take_events`].
    pub async fn wait_event(
        &mut self,
        name: &str,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Result<Event> {
        if let Some(i) = self
            .events
            .iter()
            .position(|e| e.event == name && matches(&e.data))
        {
            return Ok(self.events.remove(i));
        }
        let wait = async {
            loop {
                let message = self.read_message().await?;
                if message.get("event").is_none() {
                    continue;
                }
                if let Ok(event) = serde_json::from_value::<Event>(message.clone())
                    && event.event == name
                    && matches(&event.data)
                {
                    return Ok(event);
                }
                self.keep_event(message);
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(format!("waiting for the QMP event {name}")))?
    }

    /// The ids of the devices added with an `id` (`-device` and `device_add`).
    pub async fn peripherals(&mut self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Property {
            name: String,
        }
        let list: Vec<Property> = self
            .execute_as("qom-list", Some(json!({"path": "/machine/peripheral"})))
            .await?;
        Ok(list.into_iter().map(|p| p.name).collect())
    }

    /// Runs `command` and parses its answer.
    pub async fn execute_as<T: DeserializeOwned>(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<T> {
        let value = self.execute(command, arguments).await?;
        serde_json::from_value(value)
            .map_err(|e| Error::Protocol(format!("answer to {command}: {e}")))
    }

    pub async fn query_status(&mut self) -> Result<StatusInfo> {
        self.execute_as("query-status", None).await
    }

    /// Pauses the guest's vCPUs (and flushes its disks).
    pub async fn stop(&mut self) -> Result<()> {
        self.execute("stop", None).await.map(drop)
    }

    pub async fn cont(&mut self) -> Result<()> {
        self.execute("cont", None).await.map(drop)
    }

    /// Presses the ACPI power button.
    pub async fn system_powerdown(&mut self) -> Result<()> {
        self.execute("system_powerdown", None).await.map(drop)
    }

    pub async fn system_reset(&mut self) -> Result<()> {
        self.execute("system_reset", None).await.map(drop)
    }

    /// Ends QEMU. QEMU may close the socket before or after answering; both count as done.
    pub async fn quit(&mut self) -> Result<()> {
        match self.execute("quit", None).await {
            Ok(_) => Ok(()),
            Err(Error::Protocol(message)) if message.contains("closed") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Starts an outgoing migration to `uri` (`exec:...`, `unix:...`, `tcp:...`).
    pub async fn migrate(&mut self, uri: &str) -> Result<()> {
        self.execute("migrate", Some(json!({ "uri": uri })))
            .await
            .map(drop)
    }

    pub async fn query_migrate(&mut self) -> Result<MigrationInfo> {
        self.execute_as("query-migrate", None).await
    }

    /// Sets the migration bandwidth limit (bytes per second).
    pub async fn set_migration_bandwidth(&mut self, bytes_per_second: u64) -> Result<()> {
        self.execute(
            "migrate-set-parameters",
            Some(json!({ "max-bandwidth": bytes_per_second })),
        )
        .await
        .map(drop)
    }

    /// Runs a human monitor (HMP) command and returns its text output.
    pub async fn human_monitor_command(&mut self, command_line: &str) -> Result<String> {
        let value = self
            .execute(
                "human-monitor-command",
                Some(json!({ "command-line": command_line })),
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    fn keep_event(&mut self, message: Value) {
        match serde_json::from_value::<Event>(message) {
            Ok(event) => {
                tracing::debug!(event = %event.event, "QMP event");
                if self.events.len() == MAX_EVENTS {
                    self.events.remove(0);
                }
                self.events.push(event);
            }
            Err(e) => tracing::debug!("unparsable QMP event: {e}"),
        }
    }

    /// Reads one line and parses it as a JSON object.
    async fn read_message(&mut self) -> Result<Value> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut self.reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| Error::Protocol(format!("reading: {e}")))?;
            if n == 0 {
                return Err(Error::Protocol("connection closed".into()));
            }
            if line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
                return Err(Error::Protocol("message too long".into()));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let value: Value = serde_json::from_slice(&line).map_err(|e| {
                Error::Protocol(format!(
                    "bad JSON {:?}: {e}",
                    String::from_utf8_lossy(&line)
                ))
            })?;
            if !value.is_object() {
                return Err(Error::Protocol(format!("expected an object, got {value}")));
            }
            return Ok(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncBufReadExt;
    use tokio::net::UnixListener;

    use super::*;

    /// A fake QEMU: sends the greeting, then answers each request with `respond`.
    async fn serve(listener: UnixListener, respond: fn(&Value) -> Vec<String>) {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = stream.into_split();
        let greeting = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"], "future": 1}}"#;
        let _ = write.write_all(format!("{greeting}\r\n").as_bytes()).await;
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let request: Value = serde_json::from_str(&line).expect("client sends JSON");
            for out in respond(&request) {
                if out == "CLOSE" {
                    return;
                }
                let _ = write.write_all(format!("{out}\r\n").as_bytes()).await;
            }
        }
    }

    fn responder(request: &Value) -> Vec<String> {
        let id = request["id"].clone();
        match request["execute"].as_str().unwrap_or_default() {
            "qmp_capabilities" => vec![json!({"return": {}, "id": id}).to_string()],
            // An event and a stray answer arrive before ours; fields we don't know are extra.
            "query-status" => vec![
                json!({"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 2}}).to_string(),
                json!({"return": {"status": "paused"}, "id": 9999}).to_string(),
                json!({"return": {"status": "running", "singlestep": false, "running": true, "new": [1]}, "id": id}).to_string(),
            ],
            "query-migrate" => vec![json!({"return": {}, "id": id}).to_string()],
            "stop" => vec![json!({"error": {"class": "GenericError", "desc": "nope"}, "id": id}).to_string()],
            "quit" => vec!["CLOSE".to_owned()],
            "slow" => vec![],
            _ => vec![json!({"error": {"class": "CommandNotFound", "desc": "unknown"}, "id": id}).to_string()],
        }
    }

    async fn connect() -> (tempfile::TempDir, Qmp) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        tokio::spawn(serve(listener, responder));
        let qmp = Qmp::connect(&path, Duration::from_secs(2))
            .await
            .expect("connects");
        (dir, qmp)
    }

    #[tokio::test]
    async fn framing_ids_events_and_errors() {
        let (_dir, mut qmp) = connect().await;
        assert_eq!(qmp.greeting().qmp.capabilities, ["oob"]);
        let status = qmp.query_status().await.expect("status");
        assert_eq!(status.status, "running");
        assert!(status.running);
        let events = qmp.take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "RESUME");
        // Missing fields default.
        let migration = qmp.query_migrate().await.expect("migrate info");
        assert!(migration.status.is_none());
        match qmp.stop().await {
            Err(Error::Qmp {
                command,
                class,
                desc,
            }) => {
                assert_eq!(
                    (command.as_str(), class.as_str(), desc.as_str()),
                    ("stop", "GenericError", "nope")
                );
            }
            other => panic!("expected a QMP error, got {other:?}"),
        }
        // The session still works after an error, and ids keep matching.
        assert_eq!(qmp.query_status().await.expect("status").status, "running");
        // `quit` answered by a closed socket is success.
        qmp.quit().await.expect("quit");
    }

    #[tokio::test]
    async fn timeouts_and_closed_sockets() {
        let (_dir, mut qmp) = connect().await;
        qmp.timeout = Duration::from_millis(100);
        assert!(matches!(
            qmp.execute("slow", None).await,
            Err(Error::Timeout(_))
        ));

        // A server that never greets.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("silent.sock");
        let _listener = UnixListener::bind(&path).expect("bind");
        let result = Qmp::connect(&path, Duration::from_millis(100)).await;
        assert!(matches!(result, Err(Error::Timeout(_))));

        // No socket at all.
        let result =
            Qmp::connect(&dir.path().join("absent.sock"), Duration::from_millis(100)).await;
        assert!(matches!(result, Err(Error::Io { .. })));
    }
}
