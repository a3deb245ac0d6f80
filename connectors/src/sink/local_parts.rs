//! Exactly-once parts in a local folder: spooled in its staging folder, published by rename,
//! made durable by syncing the folders.

use std::fs::File;
use std::path::{Path, PathBuf};

use sluice_engine::{Error, Result};

use super::parts::{PartStore, Published, STAGING, remove_if_there};

/// The output folder of an exactly-once sink.
#[derive(Debug)]
pub(crate) struct LocalParts {
    /// The folder as configured, for logs.
    name: String,
    /// The folder, absolute, so the paths recorded in checkpoints do not depend on the
    /// working directory of the run that restores them.
    dir: PathBuf,
    staging: PathBuf,
    /// Folders with renames or removals not yet synced.
    touched: Vec<PathBuf>,
}

impl LocalParts {
    /// Creates the folder `dir` and its staging folder; nothing in them is removed.
    pub(crate) fn create(dir: PathBuf) -> Result<Self> {
        let name = dir.display().to_string();
        let staging = dir.join(STAGING);
        std::fs::create_dir_all(&staging).map_err(Error::io(&staging))?;
        let dir = std::fs::canonicalize(&dir).map_err(Error::io(&dir))?;
        if dir.to_str().is_none() {
            // Staged paths travel in checkpoints as text; they must come back unchanged.
            return Err(Error::config(
                "sink.path",
                format!("{name}: exactly-once output needs a UTF-8 path"),
            ));
        }
        Ok(LocalParts {
            name,
            staging: dir.join(STAGING),
            dir,
            touched: Vec::new(),
        })
    }

    fn touch(&mut self, folder: Option<&Path>) {
        if let Some(folder) = folder
            && !self.touched.iter().any(|t| t == folder)
        {
            self.touched.push(folder.to_path_buf());
        }
    }

    fn error(&self, message: String) -> Error {
        Error::Sink {
            name: self.name.clone(),
            message,
        }
    }
}

impl PartStore for LocalParts {
    fn name(&self) -> &str {
        &self.name
    }

    /// In the staging folder itself, so that staging is a rename and a crash leaves nothing
    /// outside the folder that `recover` clears.
    fn spool(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    fn stage(&mut self, spool: &Path, name: &str) -> Result<String> {
        let staged = self.staging.join(name);
        std::fs::rename(spool, &staged).map_err(Error::io(spool))?;
        self.touch(Some(&self.staging.clone()));
        // UTF-8: `create` checked the folder and the names are ours.
        Ok(staged.to_string_lossy().into_owned())
    }

    fn target(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn read(&mut self, address: &str) -> Result<bytes::Bytes> {
        std::fs::read(address)
            .map(bytes::Bytes::from)
            .map_err(Error::io(Path::new(address)))
    }

    fn publish(&mut self, staged: &str, target: &str) -> Result<Published> {
        let (from, to) = (Path::new(staged), Path::new(target));
        let published = if from.try_exists().map_err(Error::io(from))? {
            std::fs::rename(from, to)
                .map_err(|e| self.error(format!("cannot publish {staged} as {target}: {e}")))?;
            Published::Moved
        } else if to.try_exists().map_err(Error::io(to))? {
            Published::Already
        } else {
            return Ok(Published::Missing);
        };
        self.touch(from.parent());
        self.touch(to.parent());
        Ok(published)
    }

    fn clear_staging(&mut self) -> Result<()> {
        for path in list(&self.staging)? {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(Error::io(&path))?;
            } else {
                remove_if_there(&path)?;
            }
        }
        self.touch(Some(&self.staging.clone()));
        Ok(())
    }

    fn published(&mut self) -> Result<Vec<String>> {
        let names = list(&self.dir)?
            .into_iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect();
        Ok(names)
    }

    fn withdraw(&mut self, name: &str) -> Result<()> {
        remove_if_there(&self.dir.join(name))?;
        self.touch(Some(&self.dir.clone()));
        Ok(())
    }

    fn persist(&mut self) -> Result<()> {
        for folder in std::mem::take(&mut self.touched) {
            sync_dir(&folder)?;
        }
        Ok(())
    }
}

/// The entries of `dir`.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        paths.push(entry.map_err(Error::io(dir))?.path());
    }
    Ok(paths)
}

/// Makes renames, creations and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    // Only Unix lets a folder be opened and synced; elsewhere the rename itself is what we get.
    if cfg!(unix) {
        File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(Error::io(dir))?;
    }
    Ok(())
}
