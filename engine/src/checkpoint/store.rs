//! Writing, listing, loading and pruning checkpoints through `object_store`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::location::StoreOptions;
use super::manifest::{FORMAT, FileEntry, MANIFEST, Manifest};
use super::redact::redact;
use crate::error::{Error, Result};

/// A job's checkpoints under one root of an object store.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    root: Path,
    /// The location as the user wrote it, for messages.
    location: String,
    /// The folder of a store on the local disk, where a write killed mid-way leaves a
    /// temporary file (`name#1`) that the object store neither lists nor deletes.
    disk: Option<PathBuf>,
}

/// A checkpoint to write.
#[derive(Debug, Clone)]
pub struct NewCheckpoint {
    /// Larger than every earlier checkpoint's id of the job.
    pub id: u64,
    pub epoch: u64,
    /// (name inside the checkpoint, contents).
    pub files: Vec<(String, Bytes)>,
    pub info: serde_json::Value,
}

/// A checkpoint read back whole and verified.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    pub files: BTreeMap<String, Bytes>,
    /// Newer checkpoints that were skipped, and why (missing, truncated or corrupt files).
    pub skipped: Vec<String>,
}

impl CheckpointStore {
    /// The store at `location`: a local folder as a path or `file://` URL (created when
    /// missing), or `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` with
    /// credentials, region and endpoint from the environment and the default retries.
    pub fn open(location: &str) -> Result<Self> {
        Self::open_with(location, &StoreOptions::default())
    }

    /// [`open`](Self::open) with other retries, timeouts or settings.
    pub fn open_with(location: &str, options: &StoreOptions) -> Result<Self> {
        let opened = super::location::open(location, options)?;
        Ok(CheckpointStore {
            store: opened.store,
            root: opened.root,
            location: location.to_string(),
            disk: opened.folder,
        })
    }

    /// A store on any `object_store` backend under `root` (tests use `InMemory`).
    pub fn on(store: Arc<dyn ObjectStore>, root: &str, location: &str) -> Self {
        CheckpointStore {
            store,
            root: Path::from(root),
            location: location.to_string(),
            disk: None,
        }
    }

    fn folder(&self, id: u64) -> Path {
        self.root.clone().join(format!("chk-{id:020}").as_str())
    }

    /// A storage error; the client's message may quote an endpoint with credentials.
    fn error(&self, what: impl std::fmt::Display) -> Error {
        Error::Checkpoint {
            location: redact(&self.location),
            message: redact(&what.to_string()),
        }
    }

    /// Writes every file, then the manifest: until the manifest is in place the checkpoint
    /// does not exist, so a crash mid-way leaves only an ignored folder.
    pub async fn write(&self, checkpoint: NewCheckpoint) -> Result<Manifest> {
        let folder = self.folder(checkpoint.id);
        let mut files = Vec::with_capacity(checkpoint.files.len());
        for (name, contents) in &checkpoint.files {
            if name == MANIFEST || name.is_empty() {
                return Err(Error::Internal(format!("checkpoint file name `{name}`")));
            }
            let path = join(&folder, name);
            files.push(FileEntry::of(name, contents));
            self.store
                .put(&path, PutPayload::from(contents.clone()))
                .await
                .map_err(|e| self.error(format!("writing {path}: {e}")))?;
        }
        let manifest = Manifest {
            format: FORMAT,
            id: checkpoint.id,
            epoch: checkpoint.epoch,
            created_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or_default(),
            files,
            info: checkpoint.info,
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Internal(format!("encoding a checkpoint manifest: {e}")))?;
        let path = folder.clone().join(MANIFEST);
        self.store
            .put(&path, PutPayload::from(json))
            .await
            .map_err(|e| self.error(format!("writing {path}: {e}")))?;
        Ok(manifest)
    }

    /// An id above every checkpoint folder's, complete or not: the next checkpoint's.
    pub async fn next_id(&self) -> Result<u64> {
        Ok(self.folders().await?.last().map_or(1, |id| id + 1))
    }

    /// The location as configured, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Ids of every checkpoint folder, complete or not, ascending.
    pub async fn folders(&self) -> Result<Vec<u64>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.root))
            .await
            .map_err(|e| self.error(format!("listing: {e}")))?;
        let mut ids: Vec<u64> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix("chk-")?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The manifest of checkpoint `id`, or why it has none that can be read.
    async fn manifest(&self, id: u64) -> Result<std::result::Result<Manifest, String>> {
        let path = self.folder(id).join(MANIFEST);
        let bytes = match self.store.get(&path).await {
            Ok(got) => got
                .bytes()
                .await
                .map_err(|e| self.error(format!("reading {path}: {e}")))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Ok(Err(format!("checkpoint {id} has no manifest (incomplete)")));
            }
            Err(e) => return Err(self.error(format!("reading {path}: {e}"))),
        };
        Ok(match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m) if m.format > FORMAT => Err(format!(
                "checkpoint {id}: manifest format {} is newer than this sluice reads ({FORMAT})",
                m.format
            )),
            Ok(m) if m.id != id => Err(format!("checkpoint {id}: its manifest names {}", m.id)),
            Ok(m) => Ok(m),
            Err(e) => Err(format!("checkpoint {id}: unreadable manifest: {e}")),
        })
    }

    /// Every complete checkpoint's manifest (files not verified), oldest first.
    pub async fn list(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for id in self.folders().await? {
            if let Ok(m) = self.manifest(id).await? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Reads checkpoint `id` and verifies every file; `Err(reason)` when it cannot be used.
    async fn read(&self, id: u64) -> Result<std::result::Result<Loaded, String>> {
        let manifest = match self.manifest(id).await? {
            Ok(m) => m,
            Err(why) => return Ok(Err(why)),
        };
        let folder = self.folder(id);
        let mut files = BTreeMap::new();
        for entry in &manifest.files {
            let path = join(&folder, &entry.name);
            let contents = match self.store.get(&path).await {
                Ok(got) => got
                    .bytes()
                    .await
                    .map_err(|e| self.error(format!("reading {path}: {e}")))?,
                Err(object_store::Error::NotFound { .. }) => {
                    return Ok(Err(format!("checkpoint {id}: {} is missing", entry.name)));
                }
                Err(e) => return Err(self.error(format!("reading {path}: {e}"))),
            };
            if let Some(why) = entry.mismatch(&contents) {
                return Ok(Err(format!("checkpoint {id}: {why}")));
            }
            files.insert(entry.name.clone(), contents);
        }
        Ok(Ok(Loaded {
            manifest,
            files,
            skipped: Vec::new(),
        }))
    }

    /// The newest checkpoint that is complete and intact, with the reasons newer ones were
    /// skipped; `None` when there is none.
    pub async fn load_latest(&self) -> Result<Option<Loaded>> {
        let mut skipped = Vec::new();
        for id in self.folders().await?.into_iter().rev() {
            match self.read(id).await? {
                Ok(mut loaded) => {
                    loaded.skipped = skipped;
                    return Ok(Some(loaded));
                }
                Err(why) => skipped.push(why),
            }
        }
        Ok(None)
    }

    /// Checkpoint `id`, which must be complete and intact.
    pub async fn load(&self, id: u64) -> Result<Loaded> {
        if !self.folders().await?.contains(&id) {
            return Err(self.error(format!("there is no checkpoint {id}")));
        }
        self.read(id).await?.map_err(|why| self.error(why))
    }

    /// Keeps the newest `keep` complete checkpoints and deletes older ones, and incomplete
    /// folders older than the newest complete checkpoint (leftovers of a crash; a newer one
    /// may still be being written). Returns the deleted ids.
    pub async fn retain(&self, keep: usize) -> Result<Vec<u64>> {
        self.prune(Some(keep.max(1))).await
    }

    /// Deletes the incomplete folders older than the newest complete checkpoint: leftovers
    /// of a job killed while writing, never needed to resume (a reader skips them) and no
    /// longer being written (this job writes one checkpoint at a time, in id order).
    /// Returns the deleted ids.
    pub async fn clear_incomplete(&self) -> Result<Vec<u64>> {
        self.prune(None).await
    }

    /// Deletes incomplete folders below the newest complete checkpoint and, with
    /// `Some(keep)`, complete ones beyond the newest `keep`.
    async fn prune(&self, keep: Option<usize>) -> Result<Vec<u64>> {
        let folders = self.folders().await?;
        let mut complete = Vec::new();
        for &id in &folders {
            if self.manifest(id).await?.is_ok() {
                complete.push(id);
            }
        }
        let Some(&newest) = complete.last() else {
            return Ok(Vec::new());
        };
        let kept: Vec<u64> = match keep {
            Some(keep) => complete.iter().rev().take(keep).copied().collect(),
            None => complete,
        };
        let mut deleted = Vec::new();
        for id in folders {
            if id < newest && !kept.contains(&id) {
                self.delete(id).await?;
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    /// Deletes every object of checkpoint `id`, the manifest first (so a half-deleted
    /// checkpoint reads as incomplete, never as corrupt).
    pub async fn delete(&self, id: u64) -> Result<()> {
        let folder = self.folder(id);
        let manifest = folder.clone().join(MANIFEST);
        match self.store.delete(&manifest).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.error(format!("deleting {manifest}: {e}"))),
        }
        let objects: Vec<_> = self
            .store
            .list(Some(&folder))
            .try_collect()
            .await
            .map_err(|e| self.error(format!("listing {folder}: {e}")))?;
        for object in objects {
            match self.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error(format!("deleting {}: {e}", object.location))),
            }
        }
        // On a local disk, what the object store does not see: the temporary file of a put
        // that a kill interrupted, and with it the folder.
        if let Some(local) = &self.disk {
            let path = local.join(folder.as_ref());
            match std::fs::remove_dir_all(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(self.error(format!("deleting {}: {e}", path.display())));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `folder/name`, where `name` may contain `/`.
fn join(folder: &Path, name: &str) -> Path {
    name.split('/')
        .filter(|part| !part.is_empty())
        .fold(folder.clone(), |path, part| path.join(part))
}

/// The store's behaviour as cases that run on any store: a local folder and memory here,
/// S3 in `s3_tests.rs`. Damage is done through the object store, so it reads the same on
/// every backend.
#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::checkpoint) fn checkpoint(id: u64, payload: &str) -> NewCheckpoint {
        NewCheckpoint {
            id,
            epoch: id * 10,
            files: vec![
                (
                    "state/window-0.arrow".into(),
                    Bytes::from(format!("{payload}-state")),
                ),
                ("sinks.json".into(), Bytes::from(format!("{payload}-sinks"))),
            ],
            info: serde_json::json!({ "sources": [{ "partition": 0, "offset": id * 100 }] }),
        }
    }

    async fn put(store: &CheckpointStore, id: u64, name: &str, contents: &'static str) {
        let path = join(&store.folder(id), name);
        store
            .store
            .put(&path, PutPayload::from(contents))
            .await
            .expect("put");
    }

    async fn ids(store: &CheckpointStore) -> Vec<u64> {
        let listed = store.list().await.expect("list");
        listed.iter().map(|m| m.id).collect()
    }

    pub(in crate::checkpoint) async fn round_trip(store: &CheckpointStore) {
        assert!(store.load_latest().await.expect("load").is_none());
        assert_eq!(store.next_id().await.expect("next id"), 1);
        store.write(checkpoint(1, "one")).await.expect("write");
        store.write(checkpoint(2, "two")).await.expect("write");
        let listed = store.list().await.expect("list");
        let listed: Vec<(u64, u64)> = listed.iter().map(|m| (m.id, m.epoch)).collect();
        assert_eq!(listed, [(1, 10), (2, 20)]);
        let latest = store.load_latest().await.expect("load").expect("found");
        assert_eq!(latest.manifest.id, 2);
        assert_eq!(latest.files["state/window-0.arrow"], "two-state");
        assert_eq!(latest.files["sinks.json"], "two-sinks");
        assert_eq!(latest.manifest.info["sources"][0]["offset"], 200);
        assert!(latest.skipped.is_empty());
        assert_eq!(latest.manifest.bytes(), 18);
        let first = store.load(1).await.expect("load 1");
        assert_eq!(first.files["sinks.json"], "one-sinks");
        assert_eq!(store.next_id().await.expect("next id"), 3);
    }

    /// The four kinds of damage: a truncated file, a corrupted one, a missing one, and a
    /// folder whose manifest was never written.
    pub(in crate::checkpoint) async fn damaged_checkpoints_are_skipped(store: &CheckpointStore) {
        store.write(checkpoint(1, "good")).await.expect("write");
        for id in 2..=4 {
            store.write(checkpoint(id, "bad")).await.expect("write");
        }
        // 2: truncated; 3: same length, one byte changed; 4: a file missing.
        put(store, 2, "sinks.json", "bad-sin").await;
        put(store, 3, "sinks.json", "bad-sinkS").await;
        let missing = join(&store.folder(4), "state/window-0.arrow");
        store.store.delete(&missing).await.expect("delete");
        // 5: crashed before its manifest.
        put(store, 5, "state/window-0.arrow", "partial").await;

        let latest = store.load_latest().await.expect("load").expect("found");
        assert_eq!(latest.manifest.id, 1);
        assert_eq!(latest.files["sinks.json"], "good-sinks");
        let reasons = latest.skipped.join("\n");
        assert_eq!(latest.skipped.len(), 4, "{reasons}");
        for expected in [
            "checkpoint 5 has no manifest",
            "checkpoint 4: state/window-0.arrow is missing",
            "checkpoint 3: sinks.json has checksum",
            "checkpoint 2: sinks.json has 7 bytes, the manifest says 9",
        ] {
            assert!(reasons.contains(expected), "{expected}: {reasons}");
        }
        // Listing shows what has a manifest; asking for a bad one by id fails with the reason;
        // the next id is above the incomplete folder's.
        assert_eq!(ids(store).await, [1, 2, 3, 4]);
        let err = store.load(3).await.expect_err("corrupt").to_string();
        let expected = format!(
            "checkpoints at {}: checkpoint 3: sinks.json has checksum",
            store.location()
        );
        assert!(err.starts_with(&expected), "{err}");
        assert_eq!(store.next_id().await.expect("next id"), 6);
    }

    pub(in crate::checkpoint) async fn retention(store: &CheckpointStore) {
        // An incomplete folder older than complete ones (a crash), then 1..=4 complete, then
        // 9 incomplete (perhaps being written now).
        put(store, 0, "state/partial", "x").await;
        for id in 1..=4 {
            store.write(checkpoint(id, "c")).await.expect("write");
        }
        put(store, 9, "state/partial", "x").await;
        let deleted = store.retain(2).await.expect("retain");
        assert_eq!(deleted, [0, 1, 2]);
        assert_eq!(store.folders().await.expect("folders"), [3, 4, 9]);
        assert_eq!(ids(store).await, [3, 4]);
        // Nothing more to delete, and keeping none still keeps the newest.
        assert!(store.retain(2).await.expect("retain").is_empty());
        assert_eq!(store.retain(0).await.expect("retain"), [3]);
        assert_eq!(ids(store).await, [4]);
    }

    pub(in crate::checkpoint) async fn deletion(store: &CheckpointStore) {
        for id in 1..=3 {
            store.write(checkpoint(id, "d")).await.expect("write");
        }
        store.delete(2).await.expect("delete");
        assert_eq!(store.folders().await.expect("folders"), [1, 3]);
        // Every object went, not only the manifest; deleting again is not an error.
        let gone = store.folder(2);
        let left: Vec<_> = store
            .store
            .list(Some(&gone))
            .try_collect()
            .await
            .expect("list");
        assert!(left.is_empty(), "{left:?}");
        store.delete(2).await.expect("delete again");
        let err = store.load(2).await.expect_err("deleted").to_string();
        assert!(err.contains("there is no checkpoint 2"), "{err}");
        // Deleting the newest makes the one before it the latest; ids are never reused
        // while a folder above remains, and the next one follows the newest left.
        store.delete(3).await.expect("delete");
        let latest = store.load_latest().await.expect("load").expect("found");
        assert_eq!((latest.manifest.id, latest.skipped.len()), (1, 0));
        assert_eq!(store.next_id().await.expect("next id"), 2);
    }

    fn on_disk() -> (tempfile::TempDir, CheckpointStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CheckpointStore::open(&dir.path().display().to_string()).expect("open");
        (dir, store)
    }

    fn in_memory() -> CheckpointStore {
        let memory = Arc::new(object_store::memory::InMemory::new());
        CheckpointStore::on(memory, "jobs/fraud", "memory")
    }

    #[tokio::test]
    async fn round_trip_on_disk() {
        round_trip(&on_disk().1).await;
    }

    #[tokio::test]
    async fn round_trip_in_memory() {
        round_trip(&in_memory()).await;
    }

    #[tokio::test]
    async fn damaged_checkpoints_are_skipped_on_disk() {
        damaged_checkpoints_are_skipped(&on_disk().1).await;
    }

    #[tokio::test]
    async fn damaged_checkpoints_are_skipped_in_memory() {
        damaged_checkpoints_are_skipped(&in_memory()).await;
    }

    #[tokio::test]
    async fn retention_on_disk() {
        retention(&on_disk().1).await;
    }

    #[tokio::test]
    async fn retention_in_memory() {
        retention(&in_memory()).await;
    }

    #[tokio::test]
    async fn deletion_on_disk() {
        deletion(&on_disk().1).await;
    }

    #[tokio::test]
    async fn deletion_in_memory() {
        deletion(&in_memory()).await;
    }

    /// Issue 12: a job killed inside a put on a local disk leaves the object store's
    /// temporary file (`name#1`), which it neither lists nor deletes; pruning must still
    /// remove the folder, at start as after a checkpoint.
    #[tokio::test]
    async fn a_folder_left_with_a_temporary_file_by_a_kill_is_deleted() {
        let (dir, store) = on_disk();
        let leftover = |id: u64| {
            let folder = dir.path().join(format!("chk-{id:020}"));
            std::fs::create_dir_all(&folder).expect("folder");
            std::fs::write(folder.join("op0.backend.groups.arrow#1"), [7u8; 64]).expect("temp");
            folder
        };
        let (two, four) = (leftover(2), leftover(4));
        store.write(checkpoint(1, "a")).await.expect("write");
        store.write(checkpoint(3, "b")).await.expect("write");
        assert_eq!(store.clear_incomplete().await.expect("clear"), [2]);
        assert!(!two.exists(), "the killed write's folder is gone");
        assert!(
            four.exists(),
            "a folder above the newest checkpoint may be being written"
        );
        assert_eq!(store.folders().await.expect("folders"), [1, 3, 4]);
        store.write(checkpoint(5, "c")).await.expect("write");
        assert_eq!(store.retain(2).await.expect("retain"), [1, 4]);
        assert!(!four.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }

    #[tokio::test]
    async fn clearing_incomplete_folders_keeps_every_complete_checkpoint() {
        let store = in_memory();
        put(&store, 1, "state/partial", "x").await;
        for id in 2..=5 {
            store.write(checkpoint(id, "c")).await.expect("write");
        }
        put(&store, 6, "state/partial", "x").await;
        assert_eq!(store.clear_incomplete().await.expect("clear"), [1]);
        assert_eq!(ids(&store).await, [2, 3, 4, 5]);
        assert_eq!(store.folders().await.expect("folders"), [2, 3, 4, 5, 6]);
    }

    #[tokio::test]
    async fn a_file_url_names_the_same_folder() {
        let (dir, store) = on_disk();
        store.write(checkpoint(7, "x")).await.expect("write");
        let url = format!("file://{}", dir.path().display());
        let again = CheckpointStore::open(&url).expect("open");
        let latest = again.load_latest().await.expect("load").expect("found");
        assert_eq!(latest.manifest.id, 7);
    }
}
