//! A joined host's side of the agent protocol: the calls its agent makes to the controller.

use std::time::Duration;

use onestack_compute::ops::membership::HostReport;
use serde::de::DeserializeOwned;

use super::{JoinReply, JoinRequest, PREFIX};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The controller answered and said no (a bad token, a removed host, bad input).
    #[error("the controller refused ({status}): {message}")]
    Refused { status: u16, message: String },
    /// No answer (the controller is restarting, the link is cut): worth trying again.
    #[error("cannot reach the controller at {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

impl ControlError {
    /// Whether the controller no longer knows this host's credential.
    pub fn is_credential_refused(&self) -> bool {
        matches!(self, ControlError::Refused { status: 401, .. })
    }
}

/// The controller's agent protocol at `url` (its public URL, e.g. `http://10.0.0.1:5000`).
#[derive(Clone)]
pub struct ControlClient {
    http: reqwest::Client,
    url: String,
    credential: Option<String>,
}

impl ControlClient {
    pub fn new(url: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            url: url.trim_end_matches('/').to_owned(),
            credential: None,
        }
    }

    /// The same controller, calling as the host holding `credential`.
    pub fn with_credential(mut self, credential: &str) -> Self {
        self.credential = Some(credential.to_owned());
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Trades a join token for host `host`'s credential.
    pub async fn join(&self, token: &str, host: &str) -> Result<JoinReply, ControlError> {
        let body = JoinRequest {
            token: token.to_owned(),
            host: host.to_owned(),
        };
        let request = self.http.post(self.at("/v1/join")).json(&body);
        self.send(request).await?.json_body().await
    }

    /// Reports `host` alive with what it measured.
    pub async fn report(&self, host: &str, report: &HostReport) -> Result<(), ControlError> {
        let request = self
            .http
            .put(self.at(&format!("/v1/hosts/{host}/report")))
            .json(report);
        self.send(request).await.map(|_| ())
    }

    fn at(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.url)
    }

    /// A call of the protocol at `path` (below [`PREFIX`]).
    pub(super) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.at(path))
    }

    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, ControlError> {
        let request = match &self.credential {
            Some(credential) => request.bearer_auth(credential),
            None => request,
        };
        let unreachable = |e: reqwest::Error| ControlError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(Answer {
                response,
                url: self.url.clone(),
            });
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body
            .pointer("/error/message")
            .or_else(|| body.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("no reason given")
            .to_owned();
        Err(ControlError::Refused {
            status: status.as_u16(),
            message,
        })
    }
}

pub(super) struct Answer {
    response: reqwest::Response,
    url: String,
}

impl Answer {
    pub(super) fn into_response(self) -> reqwest::Response {
        self.response
    }

    pub(super) async fn json_body<T: DeserializeOwned>(self) -> Result<T, ControlError> {
        let url = self.url;
        self.response
            .json()
            .await
            .map_err(|e| ControlError::Unreachable {
                url,
                reason: format!("an answer that is not the protocol's: {e}"),
            })
    }
}
