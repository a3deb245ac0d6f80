//! Exactly-once file output: one folder of per-epoch part files, staged in `_staging/` and
//! published by rename when the checkpoint covering them commits (two-phase commit).
//!
//! The folder holds `part-{epoch:08}.{ext}` (with rotation, `part-{epoch:08}-{n:03}.{ext}`), so
//! reading `path/part-*` in name order gives the rows in the order they were written. A part
//! being written, or prepared but not yet committed, lives in `path/_staging/`, which readers of
//! the folder's files do not see. The format of a part is a [`PartWriter`]: the direct sink of
//! that format pointed at one staged file.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use sluice_engine::sink::{Sink, Staged, StagedPart};
use sluice_engine::{Error, Result};

/// The folder, inside the output folder, where parts wait to be published.
pub(crate) const STAGING: &str = "_staging";

/// A format's writer of one part file.
pub(crate) trait PartWriter: Sink + Sized {
    /// The file name extension of the parts, without the dot (`csv`).
    const EXTENSION: &'static str;
    /// What opening a part takes besides its path (schema, header flag).
    type Options: std::fmt::Debug + Send;

    /// Creates the part file `path`.
    fn create_part(path: PathBuf, options: &Self::Options) -> Result<Self>;

    /// Completes the file (footer, buffers) and makes it durable (`fsync`).
    fn finish_part(&mut self) -> Result<()>;
}

/// A part being written in the staging folder.
#[derive(Debug)]
struct OpenPart<W> {
    path: PathBuf,
    writer: W,
    rows: u64,
}

/// The exactly-once sink of one format: rows of each epoch go to staged parts that `prepare`
/// completes and `commit` publishes. `close` publishes nothing: parts not yet prepared are
/// deleted, and prepared ones stay staged for `commit` or `recover`.
#[derive(Debug)]
pub(crate) struct PartSink<W: PartWriter> {
    /// The output folder as configured, for logs.
    name: String,
    /// The output folder, absolute, so the paths recorded in checkpoints do not depend on the
    /// working directory of the run that restores them.
    dir: PathBuf,
    staging: PathBuf,
    options: W::Options,
    rotate_rows: Option<usize>,
    open: Option<OpenPart<W>>,
    /// Parts of the current epoch already full (rotation), with their rows.
    full: Vec<(PathBuf, u64)>,
    /// The last epoch prepared or recovered: the next `prepare` must name a later one, or it
    /// would stage over parts that may already be published.
    last_epoch: u64,
}

impl<W: PartWriter> PartSink<W> {
    /// Creates the folder `dir` and its staging folder. Nothing in them is removed: on a restart
    /// they hold published output, which `recover` sorts out.
    pub(crate) fn create(
        dir: PathBuf,
        options: W::Options,
        rotate_rows: Option<usize>,
    ) -> Result<Self> {
        if rotate_rows == Some(0) {
            return Err(Error::config("sink.rotate_rows", "must be at least 1"));
        }
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
        Ok(PartSink {
            name,
            staging: dir.join(STAGING),
            dir,
            options,
            rotate_rows,
            open: None,
            full: Vec::new(),
            last_epoch: 0,
        })
    }

    fn error(&self, message: String) -> Error {
        Error::Sink {
            name: self.name.clone(),
            message,
        }
    }

    /// The published name of part `n` of `epoch`.
    fn part_name(&self, epoch: u64, n: usize) -> String {
        match self.rotate_rows {
            Some(_) => format!("part-{epoch:08}-{n:03}.{}", W::EXTENSION),
            None => format!("part-{epoch:08}.{}", W::EXTENSION),
        }
    }

    fn open_part(&mut self) -> Result<&mut OpenPart<W>> {
        let part = match self.open.take() {
            Some(part) => part,
            None => {
                // Named by its place in the epoch only: the epoch is known at `prepare`.
                let name = format!("open-{:03}.{}", self.full.len(), W::EXTENSION);
                let path = self.staging.join(name);
                let writer = W::create_part(path.clone(), &self.options)?;
                OpenPart {
                    path,
                    writer,
                    rows: 0,
                }
            }
        };
        Ok(self.open.insert(part))
    }

    fn finish_open(&mut self) -> Result<()> {
        if let Some(mut part) = self.open.take() {
            part.writer.finish_part()?;
            self.full.push((part.path, part.rows));
        }
        Ok(())
    }

    /// Deletes what was written since the last `prepare`.
    fn discard_unprepared(&mut self) -> Result<()> {
        let open = self.open.take().map(|part| part.path);
        for path in open.into_iter().chain(self.full.drain(..).map(|(p, _)| p)) {
            remove_if_there(&path)?;
        }
        Ok(())
    }

    /// Deletes everything in the staging folder and every published part of an epoch after
    /// `epoch`.
    fn remove_after(&mut self, epoch: u64) -> Result<()> {
        for path in list(&self.staging)? {
            if path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(Error::io(&path))?;
            } else {
                remove_if_there(&path)?;
            }
        }
        for path in list(&self.dir)? {
            let later = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| part_epoch(n, W::EXTENSION))
                .is_some_and(|e| e > epoch);
            if later {
                remove_if_there(&path)?;
            }
        }
        sync_dir(&self.staging)?;
        sync_dir(&self.dir)
    }
}

impl<W: PartWriter> Sink for PartSink<W> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let limit = self.rotate_rows.unwrap_or(usize::MAX) as u64;
        let total = batch.num_rows();
        let mut offset = 0;
        while offset < total {
            let part = self.open_part()?;
            let take = (limit - part.rows).min((total - offset) as u64) as usize;
            if take == total {
                part.writer.write(batch)?;
            } else {
                part.writer.write(&batch.slice(offset, take))?;
            }
            part.rows += take as u64;
            offset += take;
            if part.rows >= limit {
                self.finish_open()?;
            }
        }
        Ok(())
    }

    /// Hands buffered rows to the operating system; nothing becomes visible before `commit`.
    fn flush(&mut self) -> Result<()> {
        match &mut self.open {
            Some(part) => part.writer.flush(),
            None => Ok(()),
        }
    }

    /// Deletes the rows written since the last `prepare` (they were never part of a
    /// checkpoint) and keeps prepared parts staged: a restart may still publish them.
    fn close(&mut self) -> Result<()> {
        self.discard_unprepared()
    }

    fn transactional(&self) -> bool {
        true
    }

    fn prepare(&mut self, epoch: u64) -> Result<Option<Staged>> {
        if epoch <= self.last_epoch {
            return Err(self.error(format!(
                "epoch {epoch} prepared after epoch {}: epochs must increase",
                self.last_epoch
            )));
        }
        self.finish_open()?;
        self.last_epoch = epoch;
        if self.full.is_empty() {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(self.full.len());
        for (n, (open, rows)) in std::mem::take(&mut self.full).into_iter().enumerate() {
            // Renamed to its published name inside the staging folder, so a leftover there says
            // which epoch it belongs to.
            let name = self.part_name(epoch, n);
            let staged = self.staging.join(&name);
            std::fs::rename(&open, &staged).map_err(Error::io(&open))?;
            parts.push(StagedPart {
                // Both UTF-8: `create` checked the folder and the names are ours.
                staged: staged.to_string_lossy().into_owned(),
                target: self.dir.join(&name).to_string_lossy().into_owned(),
                rows,
            });
        }
        sync_dir(&self.staging)?;
        Ok(Some(Staged { epoch, parts }))
    }

    /// Renames each staged part to its target. A part already published (staged file gone,
    /// target there) is skipped, so a second commit of the same epoch is a no-op.
    fn commit(&mut self, staged: &Staged) -> Result<()> {
        let mut folders = Vec::new();
        for part in &staged.parts {
            let (from, to) = (Path::new(&part.staged), Path::new(&part.target));
            if from.try_exists().map_err(Error::io(from))? {
                std::fs::rename(from, to).map_err(|e| {
                    self.error(format!(
                        "cannot publish {} as {}: {e}",
                        from.display(),
                        to.display()
                    ))
                })?;
            } else if !to.try_exists().map_err(Error::io(to))? {
                return Err(self.error(format!(
                    "epoch {}: neither the staged part {} nor its published copy {} exists, \
                     so its {} rows are lost",
                    staged.epoch,
                    from.display(),
                    to.display(),
                    part.rows
                )));
            }
            for folder in [from.parent(), to.parent()].into_iter().flatten() {
                if !folders.contains(&folder) {
                    folders.push(folder);
                }
            }
        }
        folders.into_iter().try_for_each(sync_dir)
    }

    fn recover(&mut self, epoch: u64, staged: &[Staged]) -> Result<()> {
        self.discard_unprepared()?;
        for s in staged {
            self.commit(s)?;
        }
        self.remove_after(epoch)?;
        self.last_epoch = epoch;
        Ok(())
    }
}

/// The epoch of a published part named `part-{epoch}.{ext}` or `part-{epoch}-{n}.{ext}`;
/// `None` for any other file, which is left alone.
fn part_epoch(name: &str, ext: &str) -> Option<u64> {
    let stem = name
        .strip_prefix("part-")?
        .strip_suffix(ext)?
        .strip_suffix('.')?;
    let (epoch, n) = stem.split_once('-').unwrap_or((stem, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(epoch) && digits(n) {
        epoch.parse().ok()
    } else {
        None
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

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
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

/// The names of the published files in `dir`, sorted as a reader of `dir/part-*` sees them.
#[cfg(test)]
pub(crate) fn published(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = list(dir)
        .expect("list")
        .into_iter()
        .filter(|p| p.is_file())
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::CsvSink;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::SchemaRef;
    use std::sync::Arc;

    fn batch(ids: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef)])
            .expect("batch")
    }

    fn sink(dir: &Path) -> PartSink<CsvSink> {
        let schema: SchemaRef = batch(&[]).schema();
        PartSink::create(dir.join("out"), (schema, true), None).expect("create")
    }

    /// Writes `ids` as the rows of `epoch` and prepares it.
    fn stage(sink: &mut PartSink<CsvSink>, epoch: u64, ids: &[i64]) -> Staged {
        sink.write(&batch(ids)).expect("write");
        sink.prepare(epoch)
            .expect("prepare")
            .expect("rows were written")
    }

    fn text(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join("out").join(name)).expect("read part")
    }

    #[test]
    fn a_staged_part_is_invisible_until_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut sink = sink(dir.path());
        let staged = stage(&mut sink, 1, &[1, 2]);
        assert_eq!(published(&out), Vec::<String>::new());
        assert_eq!(published(&out.join(STAGING)), ["part-00000001.csv"]);
        assert_eq!(staged.parts.len(), 1);
        assert_eq!(staged.parts[0].rows, 2);
        sink.commit(&staged).expect("commit");
        assert_eq!(published(&out), ["part-00000001.csv"]);
        assert_eq!(text(dir.path(), "part-00000001.csv"), "id\n1\n2\n");
        assert_eq!(published(&out.join(STAGING)), Vec::<String>::new());
    }

    #[test]
    fn recover_publishes_what_a_crash_left_prepared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut first = sink(dir.path());
        let one = stage(&mut first, 1, &[1]);
        first.commit(&one).expect("commit");
        let two = stage(&mut first, 2, &[2, 3]);
        drop(first); // the crash: checkpoint 2 is durable, its commit never ran

        let mut second = sink(dir.path());
        second.recover(2, &[two]).expect("recover");
        let out = dir.path().join("out");
        assert_eq!(published(&out), ["part-00000001.csv", "part-00000002.csv"]);
        assert_eq!(text(dir.path(), "part-00000002.csv"), "id\n2\n3\n");
        assert_eq!(published(&out.join(STAGING)), Vec::<String>::new());
    }

    #[test]
    fn recover_deletes_leftovers_of_later_epochs_and_the_run_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut first = sink(dir.path());
        let one = stage(&mut first, 1, &[1]);
        first.commit(&one).expect("commit");
        stage(&mut first, 2, &[2]); // checkpoint 2 never became durable
        first.write(&batch(&[3])).expect("write"); // an open part of epoch 3
        drop(first);

        let mut second = sink(dir.path());
        second
            .recover(1, std::slice::from_ref(&one))
            .expect("recover");
        let out = dir.path().join("out");
        assert_eq!(published(&out), ["part-00000001.csv"]);
        assert_eq!(published(&out.join(STAGING)), Vec::<String>::new());

        let two = stage(&mut second, 2, &[20, 30]);
        second.commit(&two).expect("commit");
        assert_eq!(text(dir.path(), "part-00000001.csv"), "id\n1\n");
        assert_eq!(text(dir.path(), "part-00000002.csv"), "id\n20\n30\n");
    }

    #[test]
    fn recover_withdraws_published_parts_of_later_epochs_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut first = sink(dir.path());
        let mut staged = Vec::new();
        for epoch in 1..=3 {
            let s = stage(&mut first, epoch, &[epoch as i64]);
            first.commit(&s).expect("commit");
            staged.push(s);
        }
        // Files that are not parts of this format are the user's: left alone.
        for other in ["notes.txt", "part-00000009.jsonl", "part-x.csv"] {
            std::fs::write(out.join(other), "x").expect("write");
        }
        drop(first);

        let mut second = sink(dir.path());
        second.recover(1, &staged[..1]).expect("recover");
        assert_eq!(
            published(&out),
            [
                "notes.txt",
                "part-00000001.csv",
                "part-00000009.jsonl",
                "part-x.csv"
            ]
        );
        assert_eq!(text(dir.path(), "part-00000001.csv"), "id\n1\n");
    }

    #[test]
    fn a_second_commit_is_a_no_op() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sink = sink(dir.path());
        let staged = stage(&mut sink, 1, &[7]);
        sink.commit(&staged).expect("commit");
        sink.commit(&staged).expect("commit again");
        assert_eq!(text(dir.path(), "part-00000001.csv"), "id\n7\n");
    }

    #[test]
    fn a_commit_with_both_files_gone_is_an_error_naming_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sink = sink(dir.path());
        let staged = stage(&mut sink, 1, &[7]);
        std::fs::remove_file(&staged.parts[0].staged).expect("remove");
        let err = sink.commit(&staged).expect_err("nothing to publish");
        let message = err.to_string();
        assert!(message.contains(&staged.parts[0].staged), "{message}");
        assert!(message.contains(&staged.parts[0].target), "{message}");
        assert!(message.contains("1 rows are lost"), "{message}");
    }

    #[test]
    fn close_publishes_nothing_and_keeps_prepared_parts_staged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut sink = sink(dir.path());
        let staged = stage(&mut sink, 1, &[1]);
        sink.write(&batch(&[2])).expect("write");
        sink.close().expect("close");
        assert_eq!(published(&out), Vec::<String>::new());
        assert_eq!(published(&out.join(STAGING)), ["part-00000001.csv"]);
        assert!(Path::new(&staged.parts[0].staged).ends_with("out/_staging/part-00000001.csv"));
    }

    #[test]
    fn close_without_a_prepare_publishes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut sink = sink(dir.path());
        sink.write(&batch(&[1, 2])).expect("write");
        sink.close().expect("close");
        assert_eq!(published(&out), Vec::<String>::new());
        assert_eq!(published(&out.join(STAGING)), Vec::<String>::new());
    }

    #[test]
    fn an_epoch_not_after_the_last_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sink = sink(dir.path());
        sink.recover(4, &[]).expect("recover");
        sink.write(&batch(&[1])).expect("write");
        let err = sink.prepare(4).expect_err("epoch 4 again");
        assert!(
            err.to_string().contains("epoch 4 prepared after epoch 4"),
            "{err}"
        );
        assert!(err.to_string().contains("out"), "{err}");
    }

    #[test]
    fn part_names_give_their_epoch() {
        assert_eq!(part_epoch("part-00000012.csv", "csv"), Some(12));
        assert_eq!(part_epoch("part-00000012-003.parquet", "parquet"), Some(12));
        assert_eq!(part_epoch("part-123456789.csv", "csv"), Some(123_456_789));
        for other in [
            "part-00000012.csv.tmp",
            "part-.csv",
            "part-1-x.csv",
            "open-000.csv",
        ] {
            assert_eq!(part_epoch(other, "csv"), None, "{other}");
        }
        assert_eq!(part_epoch("part-00000012.jsonl", "csv"), None);
    }
}
