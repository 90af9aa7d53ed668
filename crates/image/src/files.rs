//! The image file store under the data directory. Data is streamed to a temporary file while
//! md5 and sha512 are computed on two other threads, fsynced and renamed into place only when
//! complete, so a crash never leaves a half-written image behind its final name.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::Md5;
use sha2::{Digest, Sha512};
use std::io::Write;

use tokio::sync::{mpsc, oneshot};

use crate::quota::Reservation;

/// Batches in flight to each upload worker; bounds memory whatever the upload size.
const SINK_QUEUE: usize = 4;
/// Bytes handed to the workers at a time.
const BATCH: usize = 1 << 20;
/// Bytes gathered before each write to the temporary file.
const WRITE_BUFFER: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the upload is larger than the {0} bytes allowed")]
    TooLarge(u64),
    #[error("the upload would pass the project's image storage quota of {0} bytes")]
    Quota(u64),
    #[error("the upload ended after {received} of the {expected} bytes announced")]
    Truncated { received: u64, expected: u64 },
    #[error("the connection failed during the upload: {0}")]
    Client(String),
    #[error("image store I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub size: u64,
    pub md5: String,
    pub sha512: String,
    /// The temporary file, to be inspected and then committed or discarded.
    pub temp: PathBuf,
}

#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

/// Something that consumes an upload chunk by chunk on its own thread: a digest, or the file.
trait ChunkSink: Send + 'static {
    type Output: Send + 'static;
    fn consume(&mut self, chunk: &[u8]) -> std::io::Result<()>;
    fn finish(self) -> std::io::Result<Self::Output>;
}

struct DigestSink<D>(D);

impl<D: Digest + Send + 'static> ChunkSink for DigestSink<D> {
    type Output = String;
    fn consume(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.0.update(chunk);
        Ok(())
    }
    fn finish(self) -> std::io::Result<String> {
        Ok(hex::encode(self.0.finalize()))
    }
}

/// Writes through a large buffer (few syscalls) and makes the data durable at the end.
struct FileSink(std::io::BufWriter<std::fs::File>);

impl ChunkSink for FileSink {
    type Output = ();
    fn consume(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.0.write_all(chunk)
    }
    fn finish(self) -> std::io::Result<()> {
        let file = self.0.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

/// A sink running on its own thread, fed by a bounded channel: a full queue makes the
/// upload wait, so memory stays bounded whatever the size; the three sinks of an upload
/// (md5, sha512, file) run in parallel on as many cores as there are.
struct Running<T> {
    chunks: mpsc::Sender<Bytes>,
    done: oneshot::Receiver<std::io::Result<T>>,
}

fn run_sink<S: ChunkSink>(mut sink: S) -> Running<S::Output> {
    let (chunks, mut rx) = mpsc::channel::<Bytes>(SINK_QUEUE);
    let (done_tx, done) = oneshot::channel();
    std::thread::spawn(move || {
        while let Some(chunk) = rx.blocking_recv() {
            if let Err(e) = sink.consume(&chunk) {
                let _ = done_tx.send(Err(e));
                return;
            }
        }
        let _ = done_tx.send(sink.finish());
    });
    Running { chunks, done }
}

impl<T> Running<T> {
    /// Hands over a chunk; on failure, the sink's own error.
    async fn feed(&mut self, chunk: Bytes) -> std::io::Result<()> {
        if self.chunks.send(chunk).await.is_ok() {
            return Ok(());
        }
        Err(match (&mut self.done).await {
            Ok(Err(e)) => e,
            _ => std::io::Error::other("an upload worker stopped"),
        })
    }

    /// Ends the input and waits for the result.
    async fn finish(self) -> std::io::Result<T> {
        drop(self.chunks);
        self.done
            .await
            .map_err(|_| std::io::Error::other("an upload worker stopped"))?
    }
}

impl FileStore {
    /// Opens the store at `root`, creating it, and removes temporary files left by uploads
    /// that a crash interrupted; returns the ids whose uploads were interrupted.
    pub fn open(root: impl Into<PathBuf>) -> std::io::Result<(Self, Vec<String>)> {
        let root = root.into();
        std::fs::create_dir_all(root.join("tmp"))?;
        let mut interrupted = Vec::new();
        for entry in std::fs::read_dir(root.join("tmp"))? {
            let entry = entry?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.split('.').next()) {
                interrupted.push(id.to_owned());
            }
            std::fs::remove_file(entry.path())?;
        }
        Ok((Self { root }, interrupted))
    }

    /// The files in the store (committed and staged data), by file name.
    pub fn entries(&self) -> std::io::Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Ok(name) = entry.file_name().into_string()
            {
                out.push((name, entry.path()));
            }
        }
        Ok(out)
    }

    /// Where an image's committed data lives. Ids are checked by the caller to be UUIDs,
    /// so they never contain path separators.
    pub fn path(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Where staged (interoperable import) data lives until imported.
    pub fn staging_path(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}.staged"))
    }

    /// Streams `body` to a temporary file, hashing on the way; refuses more than `max` bytes
    /// and, when the client announced a length, fewer than announced. Each chunk is first
    /// taken from `quota` (the owner's reservation), which refuses it with `Quota(limit)`.
    pub async fn receive<S, E>(
        &self,
        id: &str,
        mut body: S,
        expected: Option<u64>,
        max: u64,
        quota: &mut Reservation,
    ) -> Result<Written, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let temp = self
            .root
            .join("tmp")
            .join(format!("{id}.{}", uuid::Uuid::new_v4().simple()));
        let result = self
            .receive_into(&temp, &mut body, expected, max, quota)
            .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    async fn receive_into<S, E>(
        &self,
        temp: &Path,
        body: &mut S,
        expected: Option<u64>,
        max: u64,
        quota: &mut Reservation,
    ) -> Result<Written, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let file = tokio::fs::File::create(temp).await?.into_std().await;
        let mut writer = run_sink(FileSink(std::io::BufWriter::with_capacity(
            WRITE_BUFFER,
            file,
        )));
        let mut md5 = run_sink(DigestSink(Md5::new()));
        let mut sha512 = run_sink(DigestSink(Sha512::new()));
        let limit = expected.map_or(max, |e| e.min(max));
        let mut size: u64 = 0;
        // The network delivers small chunks; batching them keeps the three workers from
        // being woken (and the cores from switching) for every few kilobytes.
        let mut batch = bytes::BytesMut::with_capacity(BATCH);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::Client(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(if expected.is_some_and(|e| e < max) {
                    StoreError::Client(format!("more data than the {limit} bytes announced"))
                } else {
                    StoreError::TooLarge(max)
                });
            }
            if !quota.take(chunk.len() as u64) {
                return Err(StoreError::Quota(quota.limit()));
            }
            batch.extend_from_slice(&chunk);
            if batch.len() >= BATCH {
                let full =
                    std::mem::replace(&mut batch, bytes::BytesMut::with_capacity(BATCH)).freeze();
                md5.feed(full.clone()).await?;
                sha512.feed(full.clone()).await?;
                writer.feed(full).await?;
            }
        }
        if !batch.is_empty() {
            let last = batch.freeze();
            md5.feed(last.clone()).await?;
            sha512.feed(last.clone()).await?;
            writer.feed(last).await?;
        }
        if let Some(expected) = expected
            && size != expected
        {
            return Err(StoreError::Truncated {
                received: size,
                expected,
            });
        }
        writer.finish().await?;
        let md5 = md5.finish().await?;
        let sha512 = sha512.finish().await?;
        Ok(Written {
            size,
            md5,
            sha512,
            temp: temp.to_path_buf(),
        })
    }

    /// Moves a received file to its final place, durably.
    pub async fn commit(&self, temp: &Path, destination: &Path) -> std::io::Result<()> {
        tokio::fs::rename(temp, destination).await?;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(root)?.sync_all())
            .await
            .map_err(std::io::Error::other)?
    }

    pub async fn remove(&self, path: &Path) {
        if let Err(e) = tokio::fs::remove_file(path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove image data");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Ledger;
    use std::sync::Arc;

    fn unlimited() -> Reservation {
        Arc::new(Ledger::default()).reserve("p", u64::MAX, 0, 0)
    }

    fn stream(
        chunks: Vec<&'static [u8]>,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn hashes_while_writing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = FileStore::open(dir.path()).unwrap();
        let written = store
            .receive(
                "a",
                stream(vec![b"hello ", b"world"]),
                Some(11),
                100,
                &mut unlimited(),
            )
            .await
            .unwrap();
        assert_eq!(written.size, 11);
        assert_eq!(written.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert!(
            written
                .sha512
                .starts_with("309ecc489c12d6eb4cc40f50c902f2b4")
        );
        store.commit(&written.temp, &store.path("a")).await.unwrap();
        assert_eq!(std::fs::read(store.path("a")).unwrap(), b"hello world");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn refuses_short_and_oversized_uploads_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = FileStore::open(dir.path()).unwrap();
        assert!(matches!(
            store
                .receive("a", stream(vec![b"hello"]), Some(11), 100, &mut unlimited())
                .await,
            Err(StoreError::Truncated {
                received: 5,
                expected: 11
            })
        ));
        assert!(matches!(
            store
                .receive("a", stream(vec![b"hello"]), None, 3, &mut unlimited())
                .await,
            Err(StoreError::TooLarge(3))
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn start_up_cleans_interrupted_uploads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/abc.123"), b"half").unwrap();
        let (_, interrupted) = FileStore::open(dir.path()).unwrap();
        assert_eq!(interrupted, vec!["abc".to_owned()]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
