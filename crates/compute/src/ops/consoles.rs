//! Console output (`os-getConsoleOutput`): the end of the guest's serial log. A controller
//! reads its own guests' logs; a guest on a joined host is asked of that host, whose agent
//! hears of it through its long poll on the agent protocol and sends the log back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::model::Server;
use crate::service::Computes;

/// How long the API waits for a joined host to send a console log.
const HOST_ANSWER: Duration = Duration::from_secs(10);

/// Console logs asked of joined hosts and not answered yet, per server (this process's).
#[derive(Default)]
pub(crate) struct ConsoleRequests {
    waiting: Mutex<HashMap<String, Waiting>>,
}

struct Waiting {
    host: String,
    answers: Vec<oneshot::Sender<String>>,
}

impl ConsoleRequests {
    fn ask(&self, host: &str, server_id: &str) -> oneshot::Receiver<String> {
        let (send, receive) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let entry = waiting
            .entry(server_id.to_owned())
            .or_insert_with(|| Waiting {
                host: host.to_owned(),
                answers: Vec::new(),
            });
        entry.answers.retain(|a| !a.is_closed());
        entry.answers.push(send);
        receive
    }

    fn pending_for(&self, host: &str) -> Vec<String> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|_, w| {
            w.answers.retain(|a| !a.is_closed());
            !w.answers.is_empty()
        });
        waiting
            .iter()
            .filter(|(_, w)| w.host == host)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn answer(&self, host: &str, server_id: &str, log: &str) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.get(server_id).is_some_and(|w| w.host == host)
            && let Some(w) = waiting.remove(server_id)
        {
            for answer in w.answers {
                let _ = answer.send(log.to_owned());
            }
        }
    }
}

impl Computes {
    /// The last `lines` lines of the guest's serial console log (all of its end without).
    pub(crate) async fn console_output(
        &self,
        server: &Server,
        lines: Option<usize>,
    ) -> Result<String> {
        let log = match server.host.as_deref() {
            Some(host) if host != self.host => self.console_of_joined(host, &server.id).await?,
            _ => self.own_console(&server.id).await,
        };
        Ok(match lines {
            Some(n) => {
                let all: Vec<&str> = log.lines().collect();
                all[all.len().saturating_sub(n)..].join("\n")
            }
            None => log,
        })
    }

    /// The servers on `host` whose console log someone is waiting for.
    pub fn console_requests(&self, host: &str) -> Vec<String> {
        self.consoles.pending_for(host)
    }

    /// A joined host sends the log asked of one of its servers.
    pub fn console_answered(&self, host: &str, server_id: &str, log: &str) {
        self.consoles.answer(host, server_id, log);
    }

    async fn console_of_joined(&self, host: &str, server_id: &str) -> Result<String> {
        let unanswered = || {
            Error::Conflict(format!(
                "The console of instance {server_id} is on host {host}, which did not \
                 answer; check that its agent runs (compute service list)."
            ))
        };
        if self.host_is_down(Some(host)).await? {
            return Err(unanswered());
        }
        let answer = self.consoles.ask(host, server_id);
        self.console_asked();
        match tokio::time::timeout(HOST_ANSWER, answer).await {
            Ok(Ok(log)) => Ok(log),
            _ => Err(unanswered()),
        }
    }

    /// The end of the serial log of a guest on this controller's own host.
    async fn own_console(&self, server_id: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        // Like Nova, only the end of the log: a chatty guest's log grows without bound.
        const MAX_CONSOLE_BYTES: u64 = 100 * 1024;
        let path = self.instances_dir.join(server_id).join("console.log");
        let Ok(mut file) = tokio::fs::File::open(&path).await else {
            return String::new();
        };
        let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        if file
            .seek(std::io::SeekFrom::Start(
                size.saturating_sub(MAX_CONSOLE_BYTES),
            ))
            .await
            .is_err()
        {
            return String::new();
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).await.is_err() {
            return String::new();
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
