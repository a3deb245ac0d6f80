//! Spool folders of object-store sinks: each locked while its sink lives, and those that
//! killed runs of the same output left behind removed when a new run opens it.
//!
//! An object-store sink writes the open epoch's parts to local files
//! (`$TMPDIR/sluice-parts-<random>/`) and deletes the folder when it closes; a run killed with
//! SIGKILL cannot. Such a folder holds only rows that no checkpoint covers (a restart writes
//! them again), so it may go once it is provably not in use: its sink holds an exclusive lock
//! on its file `lock` for as long as it lives, which the kernel releases when the process
//! dies, and its file `output` names the output it belongs to.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use sluice_engine::{Error, Result};

/// Names every spool folder starts with.
const PREFIX: &str = "sluice-parts-";
/// The file locked while the folder is in use.
const LOCK: &str = "lock";
/// The file naming the output the folder belongs to.
const OUTPUT: &str = "output";

/// This sink's spool folder, deleted when dropped.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: tempfile::TempDir,
    /// Held, locked, until the folder is deleted.
    _lock: File,
}

impl Spool {
    /// Creates a spool folder for `output` in `parent` (the system's temporary folder), then
    /// deletes every spool folder there that belongs to `output` and is not locked.
    pub(crate) fn create(parent: &Path, output: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(parent)
            .map_err(Error::io(parent))?;
        let path = dir.path().join(LOCK);
        let lock = File::create(&path).map_err(Error::io(&path))?;
        lock.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => Error::io(&path)(e),
            TryLockError::WouldBlock => Error::Internal(format!("{} is locked", path.display())),
        })?;
        // Named only once locked: a folder that names its output is never unlocked while
        // its sink lives.
        let named = dir.path().join(OUTPUT);
        std::fs::write(&named, output).map_err(Error::io(&named))?;
        let spool = Spool { dir, _lock: lock };
        for leftover in spool.leftovers(parent, output) {
            // Another run may remove the same folder at the same moment.
            match std::fs::remove_dir_all(&leftover) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&leftover)(e));
                }
                _ => {}
            }
        }
        Ok(spool)
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The spool folders in `parent` other than this one that name `output` and whose lock
    /// this process can take: their sinks are gone.
    fn leftovers(&self, parent: &Path, output: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|dir| {
                dir.as_path() != self.path()
                    && dir
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(PREFIX))
                    && std::fs::read_to_string(dir.join(OUTPUT)).is_ok_and(|o| o == output)
                    && File::open(dir.join(LOCK)).is_ok_and(|lock| lock.try_lock().is_ok())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "s3://bucket/jobs/out";

    /// A spool folder as a run killed with SIGKILL leaves it: named, its lock released.
    fn killed_run(parent: &Path, name: &str, output: Option<&str>) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).expect("folder");
        std::fs::write(dir.join("open-000003.csv"), "id\n1\n").expect("spool file");
        std::fs::write(dir.join(LOCK), "").expect("lock");
        if let Some(output) = output {
            std::fs::write(dir.join(OUTPUT), output).expect("output");
        }
        dir
    }

    /// Issue 12: spool folders of killed runs piled up in $TMPDIR (120 after 50 kills).
    #[test]
    fn a_new_spool_removes_the_killed_runs_of_its_output_and_nothing_else() {
        let parent = tempfile::tempdir().expect("tempdir");
        let dead = killed_run(parent.path(), "sluice-parts-dead1", Some(OUT));
        let dead_too = killed_run(parent.path(), "sluice-parts-dead2", Some(OUT));
        let other_output = killed_run(parent.path(), "sluice-parts-other", Some("s3://b/x"));
        let unnamed = killed_run(parent.path(), "sluice-parts-old", None);
        let not_a_spool = killed_run(parent.path(), "mine", Some(OUT));
        let live = Spool::create(parent.path(), OUT).expect("a live run");

        let spool = Spool::create(parent.path(), OUT).expect("a new run");
        assert!(
            !dead.exists() && !dead_too.exists(),
            "killed runs' spools are gone"
        );
        for kept in [&other_output, &unnamed, &not_a_spool] {
            assert!(kept.exists(), "{} is not this output's", kept.display());
        }
        assert!(
            live.path().exists(),
            "a live run's spool is locked, so kept"
        );
        assert!(spool.path().join(OUTPUT).exists());

        let (live_path, spool_path) = (live.path().to_path_buf(), spool.path().to_path_buf());
        drop(live);
        drop(spool);
        assert!(
            !live_path.exists() && !spool_path.exists(),
            "deleted when closed"
        );
    }
}
