//! A joined host's view of the cloud: [`Controller`] over the agent protocol. Images are
//! downloaded once into the host's downloads directory (checked against the size and
//! sha512 the image service recorded) and snapshots are streamed back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use onestack_compute::Computes;
use onestack_compute::model::Server;
use onestack_compute::ops::live_migrate::LiveReport;
use reqwest::Method;
use sha2::{Digest, Sha512};
use tokio::io::AsyncWriteExt as _;

use super::client::{ControlClient, ControlError};
use super::{ActionEvent, Changes, ConfigDrive, LatestAction, Written};
use crate::compute::controller::{Controller, ImageFacts, ServerRecord};
use crate::compute::{Error, Result};

/// How long an image or snapshot transfer may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

pub struct RemoteController {
    client: ControlClient,
    host: String,
    /// Where images are downloaded to, each once.
    downloads_dir: PathBuf,
}

impl RemoteController {
    pub fn new(client: ControlClient, host: &str, downloads_dir: PathBuf) -> Self {
        Self {
            client,
            host: host.to_owned(),
            downloads_dir,
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1/hosts/{}/{rest}", self.host)
    }

    /// The controller's counts of changes and of console asks once either is not as `seen`
    /// any more, or after `wait`, with the console logs asked for.
    pub async fn wait_for_change(
        &self,
        seen: (u64, u64),
        wait: Duration,
    ) -> Result<Changes, ControlError> {
        let (after, asks_after) = seen;
        let request = self
            .client
            .request(
                Method::GET,
                &self.path(&format!(
                    "changes?after={after}&asks_after={asks_after}&wait={}",
                    wait.as_secs()
                )),
            )
            .timeout(wait + Duration::from_secs(10));
        self.client.send(request).await?.json_body().await
    }

    /// Sends the end of a guest's serial log, asked for through [`Self::wait_for_change`].
    pub async fn send_console(&self, server_id: &str, log: String) -> Result<(), ControlError> {
        let request = self
            .client
            .request(
                Method::PUT,
                &self.path(&format!("servers/{server_id}/console")),
            )
            .body(log);
        self.client.send(request).await.map(drop)
    }

    /// Streams `file` as the body of a `PUT` to `rest`.
    async fn put_file(&self, rest: &str, file: &Path) -> Result<()> {
        let opened = tokio::fs::File::open(file)
            .await
            .map_err(|e| Error::Other(format!("cannot read {}: {e}", file.display())))?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            opened,
            1 << 20,
        ));
        let request = self
            .client
            .request(Method::PUT, &self.path(rest))
            .timeout(TRANSFER_TIMEOUT)
            .body(body);
        self.client.send(request).await?;
        Ok(())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, rest: &str) -> Result<T> {
        let request = self.client.request(Method::GET, &self.path(rest));
        Ok(self.client.send(request).await?.json_body().await?)
    }

    /// Downloads the image's data to `dest`, checking its size and sha512 on the way.
    async fn download(&self, image: &ImageFacts, dest: &Path) -> Result<()> {
        let failed = |message: String| Error::Image {
            id: image.id.clone(),
            message,
        };
        // Its own temporary file: two guests booting the image at once each download and
        // check their copy, and the rename keeps one whole file.
        let partial = dest.with_extension(format!("part-{}", onestack_db::ids::uuid()));
        let request = self
            .client
            .request(
                Method::GET,
                &self.path(&format!("images/{}/file", image.id)),
            )
            .timeout(TRANSFER_TIMEOUT);
        let response = self.client.send(request).await?.into_response();
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| failed(format!("cannot write {}: {e}", partial.display())))?;
        let mut stream = response.bytes_stream();
        let mut digest = Sha512::new();
        let mut size: u64 = 0;
        let outcome = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| failed(format!("the download broke off: {e}")))?;
                digest.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| failed(format!("cannot write {}: {e}", partial.display())))?;
            }
            file.sync_all()
                .await
                .map_err(|e| failed(format!("cannot write {}: {e}", partial.display())))?;
            if let Some(expected) = image.size
                && u64::try_from(expected).ok() != Some(size)
            {
                return Err(failed(format!(
                    "{size} bytes came, the image has {expected}"
                )));
            }
            let sha512 = hex::encode(digest.finalize());
            if let Some(expected) = image.os_hash_value.as_deref().filter(|h| h.len() == 128)
                && !expected.eq_ignore_ascii_case(&sha512)
            {
                return Err(failed(
                    "the data that came is not the image's (sha512)".into(),
                ));
            }
            tokio::fs::rename(&partial, dest)
                .await
                .map_err(|e| failed(format!("cannot keep {}: {e}", dest.display())))
        }
        .await;
        if outcome.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        outcome
    }
}

impl Controller for RemoteController {
    fn host(&self) -> &str {
        &self.host
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.get("servers").await
    }

    async fn server(&self, id: &str) -> Result<Option<ServerRecord>> {
        match self.get(&format!("servers/{id}")).await {
            Ok(record) => Ok(Some(record)),
            Err(Error::Control(ControlError::Refused { status: 404, .. })) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn finish(&self, server: Server, revision: i64) -> Result<bool> {
        let request = self
            .client
            .request(Method::PUT, &self.path(&format!("servers/{}", server.id)))
            .json(&ServerRecord { server, revision });
        match self.client.send(request).await {
            Ok(answer) => Ok(answer.json_body::<Written>().await?.written),
            // Gone meanwhile (deleted while this host was down): nothing to record.
            Err(ControlError::Refused { status: 404, .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn latest_action(&self, server_id: &str) -> Option<String> {
        match self
            .get::<LatestAction>(&format!("servers/{server_id}/latest-action"))
            .await
        {
            Ok(latest) => latest.request_id,
            Err(error) => {
                tracing::warn!(%error, "cannot read the server's instance actions");
                None
            }
        }
    }

    async fn record_event(
        &self,
        server_id: &str,
        request_id: &str,
        event: &str,
        started: i64,
        ok: bool,
    ) {
        let body = ActionEvent {
            request_id: request_id.to_owned(),
            event: event.to_owned(),
            started,
            ok,
        };
        let request = self
            .client
            .request(
                Method::POST,
                &self.path(&format!("servers/{server_id}/events")),
            )
            .json(&body);
        if let Err(error) = self.client.send(request).await {
            tracing::warn!(%error, "cannot record an instance action event");
        }
    }

    async fn purge(&self, server: &Server) -> Result<()> {
        let request = self.client.request(
            Method::DELETE,
            &self.path(&format!("servers/{}", server.id)),
        );
        self.client.send(request).await?;
        Ok(())
    }

    async fn image(&self, id: &str) -> Result<ImageFacts> {
        self.get(&format!("images/{id}")).await
    }

    async fn image_file(&self, image: &ImageFacts) -> Result<PathBuf> {
        let key = crate::compute::images::cache_key(
            &image.id,
            image.os_hash_value.as_deref(),
            image.checksum.as_deref(),
        )
        .ok_or_else(|| Error::Image {
            id: image.id.clone(),
            message: "the image has no checksum".into(),
        })?;
        let dest = self.downloads_dir.join(key);
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            return Ok(dest);
        }
        tokio::fs::create_dir_all(&self.downloads_dir)
            .await
            .map_err(|e| {
                Error::Other(format!(
                    "cannot create {}: {e}",
                    self.downloads_dir.display()
                ))
            })?;
        self.download(image, &dest).await?;
        tracing::info!(image = %image.id, "image downloaded from the controller");
        Ok(dest)
    }

    async fn upload_snapshot(&self, image_id: &str, file: &Path) -> Result<()> {
        self.put_file(&format!("images/{image_id}/file"), file)
            .await
    }

    async fn hand_over(&self, server_id: &str, disk: &Path) -> Result<()> {
        self.put_file(&format!("servers/{server_id}/migration-disk"), disk)
            .await
    }

    async fn migration_disk(&self, server_id: &str, to: &Path) -> Result<()> {
        let failed =
            |e: std::io::Error| Error::Other(format!("cannot write {}: {e}", to.display()));
        let request = self
            .client
            .request(
                Method::GET,
                &self.path(&format!("servers/{server_id}/migration-disk")),
            )
            .timeout(TRANSFER_TIMEOUT);
        let response = self.client.send(request).await?.into_response();
        let mut file = tokio::fs::File::create(to).await.map_err(failed)?;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Error::Other(format!("the migrated disk's download broke off: {e}"))
            })?;
            file.write_all(&chunk).await.map_err(failed)?;
        }
        file.sync_all().await.map_err(failed)
    }

    async fn live_migration(&self, server_id: &str, report: LiveReport) -> Result<()> {
        let request = self
            .client
            .request(
                Method::PUT,
                &self.path(&format!("servers/{server_id}/live-migration")),
            )
            .json(&report);
        self.client.send(request).await?;
        Ok(())
    }

    async fn discard_image(&self, image_id: &str) {
        let request = self
            .client
            .request(Method::DELETE, &self.path(&format!("images/{image_id}")));
        if let Err(error) = self.client.send(request).await {
            tracing::warn!(%error, image = image_id, "cannot discard an unfinished snapshot");
        }
    }

    async fn config_drive(&self, server: &Server) -> Result<BTreeMap<String, Vec<u8>>> {
        let drive: ConfigDrive = self
            .get(&format!("servers/{}/config-drive", server.id))
            .await?;
        let engine = base64::engine::general_purpose::STANDARD;
        drive
            .files
            .into_iter()
            .map(|(path, text)| {
                let bytes = engine
                    .decode(text)
                    .map_err(|e| Error::Other(format!("config drive file {path}: {e}")))?;
                Ok((path, bytes))
            })
            .collect()
    }

    fn in_process(&self) -> Option<&Computes> {
        None
    }
}
