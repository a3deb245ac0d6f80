//! A checkpoint's manifest: what files it holds (with sizes and CRC-32s), its epoch and the
//! job's own metadata. Written last, so a checkpoint exists only once its manifest does.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The manifest's file name inside a checkpoint's folder.
pub const MANIFEST: &str = "_manifest.json";

/// Version of the manifest layout; a reader refuses newer ones.
pub const FORMAT: u32 = 1;

/// One file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Name inside the checkpoint's folder (`state/window-0.arrow`).
    pub name: String,
    pub bytes: u64,
    /// CRC-32 (IEEE) of the contents.
    pub crc32: u32,
}

impl FileEntry {
    pub(crate) fn of(name: &str, contents: &Bytes) -> Self {
        FileEntry {
            name: name.to_string(),
            bytes: contents.len() as u64,
            crc32: crc32fast::hash(contents),
        }
    }

    /// Why `contents` is not this file, if it is not.
    pub(crate) fn mismatch(&self, contents: &Bytes) -> Option<String> {
        if contents.len() as u64 != self.bytes {
            return Some(format!(
                "{} has {} bytes, the manifest says {}",
                self.name,
                contents.len(),
                self.bytes
            ));
        }
        let crc = crc32fast::hash(contents);
        (crc != self.crc32).then(|| {
            format!(
                "{} has checksum {crc:08x}, the manifest says {:08x}",
                self.name, self.crc32
            )
        })
    }
}

/// What a checkpoint is: written as `_manifest.json` after all its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Increases with every checkpoint of a job; names the checkpoint's folder.
    pub id: u64,
    /// The micro-batch epoch the checkpoint closes.
    pub epoch: u64,
    /// When it was committed, Unix milliseconds.
    pub created_unix_ms: u64,
    pub files: Vec<FileEntry>,
    /// The job's metadata (source positions, watermarks, what the state means), opaque here.
    pub info: serde_json::Value,
}

impl Manifest {
    /// Bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}
