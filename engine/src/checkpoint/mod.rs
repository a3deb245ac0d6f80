//! Checkpoints in object storage: the **CheckpointStore** remembers a job's state so that a
//! restarted job resumes where it stopped.
//!
//! A checkpoint is a folder `chk-<id, 20 digits>/` under the store's root holding any number
//! of files (operator state as Arrow IPC, sink commit state) and, written last, a manifest
//! (`_manifest.json`: each file's size and CRC-32, the epoch, the job's metadata). A folder
//! without a readable manifest is not a checkpoint; a checkpoint whose files are missing,
//! short or corrupt is skipped with a warning and the one before it is used.
//!
//! Storage goes through `object_store`: a local folder (a path or `file://` URL),
//! `s3://`, `gs://` or `az://` (credentials from the environment, transient failures
//! retried), or memory (tests). [`open_location`] opens such a location for other settings
//! too: exactly-once file sinks write their parts through it. [`redact`] masks credentials
//! written into URLs wherever a message quotes one.

mod job_state;
mod location;
mod manifest;
pub mod redact;
#[cfg(test)]
mod s3_tests;
mod spec;
mod store;

pub use job_state::{Counts, JobState, OperatorState, PartitionState, SinkStates};
pub use location::{Bucket, Place, RETRY_BUDGET, StoreOptions, open_location};
pub use manifest::{FileEntry, MANIFEST, Manifest};
pub use spec::{CheckpointSpec, DEFAULT_TOLERABLE_FAILURES, Resume};
pub use store::{CheckpointStore, Loaded, NewCheckpoint};
