//! Exactly-once parts in object storage: spooled to a local file (objects cannot be appended
//! to), uploaded to `_staging/` at `prepare`, published by copy.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sluice_engine::checkpoint::Bucket;
use sluice_engine::checkpoint::redact::redact;
use sluice_engine::{Error, Result};
use tokio::runtime::Runtime;

use super::parts::{PartStore, Published, STAGING};
use super::spool::Spool;

/// Parts up to this size go up in one put; larger ones in chunks of this size (multipart
/// upload). 8 MiB is above S3's 5 MiB minimum part and allows parts of up to 80 GB within its
/// 10 000 parts; fewer, larger requests than object_store's default 5 MiB.
const CHUNK: usize = 8 << 20;

/// Chunks in flight at once, so a large part holds at most 32 MiB in memory.
const CHUNKS_IN_FLIGHT: usize = 4;

/// The output prefix of an exactly-once sink in a bucket.
#[derive(Debug)]
pub(crate) struct ObjectParts {
    /// The output as configured (`s3://bucket/prefix`), for logs.
    name: String,
    bucket: Bucket,
    staging: ObjectPath,
    /// The local folder of spool files, deleted with the sink.
    spool: Spool,
    runtime: OwnRuntime,
}

impl ObjectParts {
    /// The output `name` (its URL) at `bucket`, spooling in the system's temporary folder
    /// (where the spool folders of killed runs of the same output are removed). Sends no
    /// request: the first is `recover`'s.
    pub(crate) fn new(name: &str, bucket: Bucket) -> Result<Self> {
        let spool = Spool::create(&std::env::temp_dir(), name)?;
        Ok(ObjectParts {
            name: name.to_string(),
            staging: bucket.prefix.clone().join(STAGING),
            bucket,
            spool,
            runtime: OwnRuntime::new()?,
        })
    }

    fn store(&self) -> &dyn ObjectStore {
        self.bucket.store.as_ref()
    }

    fn url(&self, path: &ObjectPath) -> String {
        format!("{}/{path}", self.bucket.url)
    }

    /// The object at `url`, which must lie in this sink's bucket.
    fn object(&self, url: &str) -> Result<ObjectPath> {
        url.strip_prefix(&self.bucket.url)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| ObjectPath::parse(rest).ok())
            .ok_or_else(|| {
                self.error(format!(
                    "{url} is not an object of {}: was the checkpoint taken with another \
                     sink.path?",
                    self.bucket.url
                ))
            })
    }

    /// An error of this sink; the client's message may quote an endpoint with credentials.
    fn error(&self, message: String) -> Error {
        Error::Sink {
            name: self.name.clone(),
            message: redact(&message),
        }
    }

    fn failed(&self, what: &str, path: &ObjectPath) -> impl FnOnce(object_store::Error) -> Error {
        let message = format!("{what} {}", self.url(path));
        let name = self.name.clone();
        move |e| Error::Sink {
            name,
            message: redact(&format!("{message}: {e}")),
        }
    }

    /// Whether the object at `path` exists.
    fn exists(&self, path: &ObjectPath) -> Result<bool> {
        match self.runtime.block_on(self.store().head(path)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failed("reading", path)(e)),
        }
    }

    fn delete(&self, path: &ObjectPath) -> Result<()> {
        match self.runtime.block_on(self.store().delete(path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("deleting", path)(e)),
        }
    }

    /// Uploads the local file `spool` as the object `to`.
    fn upload(&self, spool: &Path, to: &ObjectPath) -> Result<()> {
        let mut file = std::fs::File::open(spool).map_err(Error::io(spool))?;
        let mut chunk = read_chunk(&mut file, spool)?;
        let store = self.store();
        let failed = self.failed("uploading", to);
        if chunk.len() < CHUNK {
            let put = store.put(to, PutPayload::from(chunk));
            return self.runtime.block_on(put).map(drop).map_err(failed);
        }
        self.runtime
            .block_on(async {
                let upload = store.put_multipart(to).await?;
                let mut chunks = WriteMultipart::new_with_chunk_size(upload, CHUNK);
                // Reading the spool blocks this thread's runtime for a moment per chunk; the
                // uploads in flight resume at the next await.
                while !chunk.is_empty() {
                    if let Err(e) = chunks.wait_for_capacity(CHUNKS_IN_FLIGHT).await {
                        // The first error is the one to report; an upload that is not aborted
                        // stays invisible (and a bucket lifecycle rule can expire it).
                        let _ = chunks.abort().await;
                        return Err(e);
                    }
                    chunks.put(Bytes::from(chunk));
                    chunk = match read_chunk(&mut file, spool) {
                        Ok(next) => next,
                        Err(e) => {
                            let _ = chunks.abort().await;
                            return Err(object_store::Error::Generic {
                                store: "spool",
                                source: Box::new(e),
                            });
                        }
                    };
                }
                chunks.finish().await
            })
            .map(drop)
            .map_err(failed)
    }
}

/// Up to [`CHUNK`] bytes of `file`; fewer only at its end.
fn read_chunk(file: &mut std::fs::File, path: &Path) -> Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK);
    file.take(CHUNK as u64)
        .read_to_end(&mut chunk)
        .map_err(Error::io(path))?;
    Ok(chunk)
}

impl PartStore for ObjectParts {
    fn name(&self) -> &str {
        &self.name
    }

    fn spool(&self, name: &str) -> PathBuf {
        self.spool.path().join(name)
    }

    fn stage(&mut self, spool: &Path, name: &str) -> Result<String> {
        let staged = self.staging.clone().join(name);
        self.upload(spool, &staged)?;
        std::fs::remove_file(spool).map_err(Error::io(spool))?;
        Ok(self.url(&staged))
    }

    fn target(&self, name: &str) -> String {
        self.url(&self.bucket.prefix.clone().join(name))
    }

    fn read(&mut self, address: &str) -> Result<bytes::Bytes> {
        let path = self.object(address)?;
        let get = async { self.store().get(&path).await?.bytes().await };
        self.runtime
            .block_on(get)
            .map_err(|e| self.failed("reading", &path)(e))
    }

    /// Copies, then deletes the staged object: a crash in between leaves both, and the next
    /// commit copies again (the same bytes) before deleting.
    fn publish(&mut self, staged: &str, target: &str) -> Result<Published> {
        let (from, to) = (self.object(staged)?, self.object(target)?);
        if !self.exists(&from)? {
            return Ok(if self.exists(&to)? {
                Published::Already
            } else {
                Published::Missing
            });
        }
        let copy = self.store().copy(&from, &to);
        self.runtime
            .block_on(copy)
            .map_err(|e| self.error(format!("cannot publish {staged} as {target}: {e}")))?;
        self.delete(&from)?;
        Ok(Published::Moved)
    }

    fn clear_staging(&mut self) -> Result<()> {
        let listing = self.store().list(Some(&self.staging)).try_collect();
        let staged: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(listing)
            .map_err(self.failed("listing", &self.staging))?;
        staged
            .iter()
            .try_for_each(|meta| self.delete(&meta.location))
    }

    fn published(&mut self) -> Result<Vec<String>> {
        let prefix = &self.bucket.prefix;
        let listing = self.store().list_with_delimiter(Some(prefix));
        let listing = self
            .runtime
            .block_on(listing)
            .map_err(self.failed("listing", prefix))?;
        let names = listing.objects.into_iter();
        Ok(names
            .filter_map(|meta| meta.location.filename().map(str::to_string))
            .collect())
    }

    fn withdraw(&mut self, name: &str) -> Result<()> {
        self.delete(&self.bucket.prefix.clone().join(name))
    }

    /// Nothing to do: an object store request is durable once answered.
    fn persist(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A current-thread runtime that drives this sink's requests on the sink's own thread, which
/// is never inside an async context. Dropping a runtime inside one panics, and a sink that
/// fails to start may be dropped there, so this one shuts down in the background instead.
#[derive(Debug)]
struct OwnRuntime(Option<Runtime>);

impl OwnRuntime {
    fn new() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start a sink's runtime: {e}")))?;
        Ok(OwnRuntime(Some(runtime)))
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match &self.0 {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("the runtime is taken only when dropped"),
        }
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    fn parts() -> ObjectParts {
        let bucket = Bucket {
            store: Arc::new(InMemory::new()),
            prefix: ObjectPath::from("out"),
            url: "memory://bucket".to_string(),
        };
        ObjectParts::new("memory://bucket/out", bucket).expect("parts")
    }

    #[test]
    fn staged_and_published_parts_are_named_by_url() {
        let mut parts = parts();
        let spool = parts.spool("open-000.csv");
        std::fs::write(&spool, "id\n1\n").expect("spool");
        let staged = parts.stage(&spool, "part-00000001.csv").expect("stage");
        assert_eq!(staged, "memory://bucket/out/_staging/part-00000001.csv");
        assert!(!spool.exists(), "the spool file is deleted once uploaded");
        let target = parts.target("part-00000001.csv");
        assert_eq!(target, "memory://bucket/out/part-00000001.csv");
        assert_eq!(
            parts.publish(&staged, &target).expect("publish"),
            Published::Moved
        );
        assert_eq!(parts.published().expect("list"), ["part-00000001.csv"]);
    }

    #[test]
    fn a_part_staged_in_another_bucket_is_refused_naming_both() {
        let mut parts = parts();
        let err = parts
            .publish(
                "s3://elsewhere/out/_staging/part-00000001.csv",
                "s3://elsewhere/out/x",
            )
            .expect_err("another bucket")
            .to_string();
        assert!(
            err.starts_with("sink memory://bucket/out: s3://elsewhere/out/_staging/"),
            "{err}"
        );
        assert!(err.contains("not an object of memory://bucket"), "{err}");
    }
}
