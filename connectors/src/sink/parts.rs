//! Exactly-once file output: per-epoch part files, staged where readers do not look and
//! published when the checkpoint covering them commits (two-phase commit).
//!
//! The output holds `part-{epoch:08}.{ext}` (with rotation, `part-{epoch:08}-{n:03}.{ext}`), so
//! reading `part-*` in name order gives the rows in the order they were written. A part is
//! written to a local spool file; `prepare` finishes it and moves it to `_staging/` of the
//! output, which readers do not see; `commit` moves it to its published name. The format of a
//! part is a [`PartWriter`]: the direct sink of that format pointed at one spool file. Where the
//! output lives is a [`PartStore`]: a local folder ([`LocalParts`], by rename) or a prefix of a
//! bucket ([`ObjectParts`], by upload and copy); epochs, names and recovery are decided here
//! for both.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use sluice_engine::checkpoint::{Place, StoreOptions, open_location};
use sluice_engine::sink::{Sink, Staged, StagedPart};
use sluice_engine::{Error, Result};

use super::local_parts::LocalParts;
use super::object_parts::ObjectParts;

/// The folder, inside the output, where parts wait to be published.
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

/// What publishing one staged part found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Published {
    /// The staged part is now at its target.
    Moved,
    /// Nothing was staged, but the target exists: an earlier commit published it.
    Already,
    /// Neither exists.
    Missing,
}

/// Where a part sink's output lives. Addresses (the `staged` and `target` of a
/// [`StagedPart`]) are the store's own: paths of a local folder, URLs of objects.
pub(crate) trait PartStore: Send + std::fmt::Debug {
    /// The output as the job names it, for logs and errors.
    fn name(&self) -> &str;

    /// The local file a part called `name` is written to until it is staged.
    fn spool(&self, name: &str) -> PathBuf;

    /// Moves the finished `spool` file into the staging area as `name`; its address.
    fn stage(&mut self, spool: &Path, name: &str) -> Result<String>;

    /// The address at which the part `name` is published.
    fn target(&self, name: &str) -> String;

    /// Moves the part staged at `staged` to `target`.
    fn publish(&mut self, staged: &str, target: &str) -> Result<Published>;

    /// Deletes everything in the staging area.
    fn clear_staging(&mut self) -> Result<()>;

    /// The names of what is in the output, staging area excluded.
    fn published(&mut self) -> Result<Vec<String>>;

    /// Deletes the published part `name`.
    fn withdraw(&mut self, name: &str) -> Result<()>;

    /// Makes the moves and deletions since the last call durable.
    fn persist(&mut self) -> Result<()>;

    /// The bytes of the part at `address` (staged or published).
    fn read(&mut self, address: &str) -> Result<bytes::Bytes>;
}

/// The output of an exactly-once sink at `path`: a folder (relative to `base_dir`), or an
/// `s3://`, `gs://` or `az://` prefix reached with the checkpoint store's retries. Opening
/// a bucket sends no request.
pub(crate) fn open_output(path: &str, base_dir: &Path) -> Result<Box<dyn PartStore>> {
    if path.trim().is_empty() {
        return Err(Error::config("sink.path", "must not be empty"));
    }
    Ok(
        match open_location(path, "sink.path", &StoreOptions::default())? {
            Place::Folder(folder) => Box::new(LocalParts::create(base_dir.join(folder))?),
            Place::Bucket(bucket) => Box::new(ObjectParts::new(path, bucket)?),
        },
    )
}

/// A part being written to its spool file.
#[derive(Debug)]
struct OpenPart<W> {
    path: PathBuf,
    writer: W,
    rows: u64,
}

/// The exactly-once sink of one format: rows of each epoch go to staged parts that `prepare`
/// completes and `commit` publishes. `close` publishes nothing: parts not yet prepared are
/// deleted, and prepared ones stay staged for `commit` or `recover`.
///
/// A `prepare` that fails (the store is down past its retries) loses nothing: the parts it
/// could not stage keep the names of their epoch and go first at the next `prepare`, which
/// reports them with its own; the runtime records them in the next checkpoint.
#[derive(Debug)]
pub(crate) struct PartSink<W: PartWriter> {
    store: Box<dyn PartStore>,
    options: W::Options,
    rotate_rows: Option<usize>,
    open: Option<OpenPart<W>>,
    /// Parts of the current epoch already full (rotation), with their rows.
    full: Vec<(PathBuf, u64)>,
    /// Finished parts a failed `prepare` could not stage: (published name, spool, rows).
    unstaged: Vec<(String, PathBuf, u64)>,
    /// Parts staged by a `prepare` that failed before it could report them.
    staged: Vec<StagedPart>,
    /// Spool files opened so far: numbers each apart from those a failed `prepare` left.
    spooled: u64,
    /// Why a part could not be finished: its rows are lost, so the sink takes no more work
    /// and the job fails rather than publish an output with a hole in it.
    broken: Option<String>,
    /// The last epoch prepared or recovered: the next `prepare` must name a later one, or it
    /// would stage over parts that may already be published.
    last_epoch: u64,
}

impl<W: PartWriter> PartSink<W> {
    /// The sink writing its parts to `store`. Nothing there is removed: on a restart it holds
    /// published output, which `recover` sorts out.
    pub(crate) fn new(
        store: Box<dyn PartStore>,
        options: W::Options,
        rotate_rows: Option<usize>,
    ) -> Result<Self> {
        if rotate_rows == Some(0) {
            return Err(Error::config("sink.rotate_rows", "must be at least 1"));
        }
        Ok(PartSink {
            store,
            options,
            rotate_rows,
            open: None,
            full: Vec::new(),
            unstaged: Vec::new(),
            staged: Vec::new(),
            spooled: 0,
            broken: None,
            last_epoch: 0,
        })
    }

    fn error(&self, message: String) -> Error {
        Error::Sink {
            name: self.store.name().to_string(),
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
                // Named by a counter only: the epoch is known at `prepare`.
                let name = format!("open-{:06}.{}", self.spooled, W::EXTENSION);
                self.spooled += 1;
                let path = self.store.spool(&name);
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
            if let Err(e) = part.writer.finish_part() {
                self.broken = Some(format!("{} rows could not be finished: {e}", part.rows));
                return Err(e);
            }
            self.full.push((part.path, part.rows));
        }
        Ok(())
    }

    /// Fails when an earlier error lost rows (see `broken`).
    fn whole(&self) -> Result<()> {
        match &self.broken {
            Some(why) => Err(self.error(format!("an earlier part failed: {why}"))),
            None => Ok(()),
        }
    }

    /// Deletes what was written since the last successful `prepare`.
    fn discard_unprepared(&mut self) -> Result<()> {
        let open = self.open.take().map(|part| part.path);
        let full = self.full.drain(..).map(|(p, _)| p);
        let unstaged = self.unstaged.drain(..).map(|(_, p, _)| p);
        for path in open.into_iter().chain(full).chain(unstaged) {
            remove_if_there(&path)?;
        }
        Ok(())
    }

    /// The rows of the staged `part`, read back (a sink that journals its output before
    /// delivering it elsewhere reads them again after a crash). Parquet parts only.
    pub(crate) fn read_staged(&mut self, part: &StagedPart) -> Result<Vec<RecordBatch>> {
        let bytes = self.store.read(&part.staged)?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| self.error(format!("reading the staged part {}: {e}", part.staged)))?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.error(format!("reading the staged part {}: {e}", part.staged)))
    }

    /// Deletes every published part of an epoch up to `epoch` (a journal's parts once their
    /// rows are delivered for good).
    pub(crate) fn withdraw_through(&mut self, epoch: u64) -> Result<()> {
        for name in self.store.published()? {
            if part_epoch(&name, W::EXTENSION).is_some_and(|e| e <= epoch) {
                self.store.withdraw(&name)?;
            }
        }
        self.store.persist()
    }

    /// Deletes everything staged and every published part of an epoch after `epoch`.
    fn remove_after(&mut self, epoch: u64) -> Result<()> {
        self.store.clear_staging()?;
        for name in self.store.published()? {
            if part_epoch(&name, W::EXTENSION).is_some_and(|e| e > epoch) {
                self.store.withdraw(&name)?;
            }
        }
        self.store.persist()
    }
}

impl<W: PartWriter> Sink for PartSink<W> {
    fn name(&self) -> String {
        self.store.name().to_string()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.whole()?;
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
        self.whole()?;
        if epoch <= self.last_epoch {
            return Err(self.error(format!(
                "epoch {epoch} prepared after epoch {}: epochs must increase",
                self.last_epoch
            )));
        }
        self.finish_open()?;
        self.last_epoch = epoch;
        // Named now, after the epoch they were written in, so that a part a failed prepare
        // leaves keeps its place in the output's order.
        for (n, (spool, rows)) in std::mem::take(&mut self.full).into_iter().enumerate() {
            let name = self.part_name(epoch, n);
            self.unstaged.push((name, spool, rows));
        }
        // Oldest first; a failure leaves this part and the ones after it for the next prepare.
        while let Some((name, spool, rows)) = self.unstaged.first() {
            let part = StagedPart {
                staged: self.store.stage(spool, name)?,
                target: self.store.target(name),
                rows: *rows,
            };
            self.unstaged.remove(0);
            self.staged.push(part);
        }
        self.store.persist()?;
        if self.staged.is_empty() {
            return Ok(None);
        }
        let parts = std::mem::take(&mut self.staged);
        Ok(Some(Staged { epoch, parts }))
    }

    /// Moves each staged part to its target. A part already published (staged copy gone,
    /// target there) is skipped, so a second commit of the same epoch is a no-op.
    fn commit(&mut self, staged: &Staged) -> Result<()> {
        for part in &staged.parts {
            if self.store.publish(&part.staged, &part.target)? == Published::Missing {
                return Err(self.error(format!(
                    "epoch {}: neither the staged part {} nor its published copy {} exists, \
                     so its {} rows are lost",
                    staged.epoch, part.staged, part.target, part.rows
                )));
            }
        }
        self.store.persist()
    }

    fn recover(&mut self, epoch: u64, staged: &[Staged]) -> Result<()> {
        self.discard_unprepared()?;
        // Staged but in no checkpoint: cleared from the staging area below.
        self.staged.clear();
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

/// Deletes the local file `path`; one already gone is fine.
pub(crate) fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::CsvSink;
    use crate::sink::outputs::{Output, on_every_output};
    use arrow::array::{ArrayRef, Int64Array};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn batch(ids: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef)])
            .expect("batch")
    }

    fn sink(out: &Output) -> PartSink<CsvSink> {
        out.sink((batch(&[]).schema(), true), None)
    }

    /// Writes `ids` as the rows of `epoch` and prepares it.
    fn stage(sink: &mut PartSink<CsvSink>, epoch: u64, ids: &[i64]) -> Staged {
        sink.write(&batch(ids)).expect("write");
        sink.prepare(epoch)
            .expect("prepare")
            .expect("rows were written")
    }

    on_every_output!(
        a_staged_part_is_invisible_until_commit,
        recover_publishes_what_a_crash_left_prepared,
        recover_deletes_leftovers_of_later_epochs_and_the_run_goes_on,
        recover_withdraws_published_parts_of_later_epochs_only,
        a_second_commit_is_a_no_op,
        a_commit_with_both_files_gone_is_an_error_naming_them,
        close_publishes_nothing_and_keeps_prepared_parts_staged,
        close_without_a_prepare_publishes_nothing,
        an_epoch_not_after_the_last_one_is_refused,
        a_part_larger_than_an_upload_chunk_is_published_whole,
        a_failed_prepare_loses_nothing_and_a_later_one_stages_its_parts,
        a_prepare_that_fails_midway_stages_the_rest_next_time_in_order,
        a_journal_reads_its_staged_rows_back_and_withdraws_delivered_epochs,
    );

    /// A Parquet part sink used as a journal (the exactly-once Kafka sink's): what it staged
    /// reads back as the rows written, and delivered epochs are withdrawn, later ones kept.
    fn a_journal_reads_its_staged_rows_back_and_withdraws_delivered_epochs(out: &Output) {
        use crate::sink::ParquetSink;
        let mut journal: PartSink<ParquetSink> = out.sink(batch(&[]).schema(), None);
        let mut stage_ids = |epoch: u64, ids: &[i64]| {
            journal.write(&batch(ids)).expect("write");
            journal.prepare(epoch).expect("prepare").expect("staged")
        };
        let one = stage_ids(1, &[1, 2, 3]);
        let two = stage_ids(2, &[4]);
        let read: Vec<RecordBatch> = one
            .parts
            .iter()
            .flat_map(|part| journal.read_staged(part).expect("read back"))
            .collect();
        assert_eq!(read, vec![batch(&[1, 2, 3])]);
        journal.commit(&one).expect("commit");
        journal.commit(&two).expect("commit");
        journal.withdraw_through(1).expect("withdraw");
        assert_eq!(out.published(), ["part-00000002.parquet"]);
        let err = journal
            .read_staged(&one.parts[0])
            .expect_err("gone")
            .to_string();
        assert!(err.contains("part-00000001"), "{err}");
    }

    /// The output's store, failing every staging and publishing once `allowed` calls have
    /// been spent: a store down past its retries.
    #[derive(Debug)]
    struct Flaky {
        inner: Box<dyn PartStore>,
        allowed: Arc<AtomicUsize>,
    }

    impl Flaky {
        fn spend(&self) -> Result<()> {
            let left = self.allowed.load(Ordering::SeqCst);
            if left == 0 {
                return Err(Error::Sink {
                    name: self.inner.name().to_string(),
                    message: "the store is down".into(),
                });
            }
            self.allowed.store(left.saturating_sub(1), Ordering::SeqCst);
            Ok(())
        }
    }

    impl PartStore for Flaky {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn spool(&self, name: &str) -> PathBuf {
            self.inner.spool(name)
        }
        fn stage(&mut self, spool: &Path, name: &str) -> Result<String> {
            self.spend()?;
            self.inner.stage(spool, name)
        }
        fn target(&self, name: &str) -> String {
            self.inner.target(name)
        }
        fn publish(&mut self, staged: &str, target: &str) -> Result<Published> {
            self.spend()?;
            self.inner.publish(staged, target)
        }
        fn clear_staging(&mut self) -> Result<()> {
            self.inner.clear_staging()
        }
        fn published(&mut self) -> Result<Vec<String>> {
            self.inner.published()
        }
        fn withdraw(&mut self, name: &str) -> Result<()> {
            self.inner.withdraw(name)
        }
        fn persist(&mut self) -> Result<()> {
            self.inner.persist()
        }
        fn read(&mut self, address: &str) -> Result<bytes::Bytes> {
            self.inner.read(address)
        }
    }

    /// A CSV sink on `out` whose store allows `allowed` calls (shared, to be changed).
    fn flaky_sink(
        out: &Output,
        rotate_rows: Option<usize>,
    ) -> (PartSink<CsvSink>, Arc<AtomicUsize>) {
        let allowed = Arc::new(AtomicUsize::new(usize::MAX));
        let store = Box::new(Flaky {
            inner: out.part_store(),
            allowed: allowed.clone(),
        });
        let sink = PartSink::new(store, (batch(&[]).schema(), true), rotate_rows).expect("sink");
        (sink, allowed)
    }

    /// (name, rows) of each part `staged` holds.
    fn parts_of(staged: &Staged) -> Vec<(String, u64)> {
        let name = |p: &StagedPart| p.target.rsplit('/').next().unwrap_or_default().to_string();
        staged.parts.iter().map(|p| (name(p), p.rows)).collect()
    }

    /// Issue 12: a checkpoint whose sink cannot stage (storage down) is tolerated, so the
    /// sink must keep the epoch's rows and hand them to the next checkpoint.
    fn a_failed_prepare_loses_nothing_and_a_later_one_stages_its_parts(out: &Output) {
        let (mut sink, allowed) = flaky_sink(out, None);
        sink.write(&batch(&[1, 2])).expect("write");
        allowed.store(0, Ordering::SeqCst);
        sink.prepare(1).expect_err("the store is down");
        sink.write(&batch(&[3])).expect("write");
        sink.prepare(2).expect_err("still down");
        sink.write(&batch(&[4])).expect("write");
        allowed.store(usize::MAX, Ordering::SeqCst);
        let staged = sink.prepare(3).expect("prepare").expect("parts");
        let expected = [
            ("part-00000001.csv".to_string(), 2),
            ("part-00000002.csv".to_string(), 1),
            ("part-00000003.csv".to_string(), 1),
        ];
        assert_eq!((staged.epoch, parts_of(&staged)), (3, expected.to_vec()));
        sink.commit(&staged).expect("commit");
        assert_eq!(out.published(), expected.map(|(name, _)| name));
        assert_eq!(out.text("part-00000001.csv"), "id\n1\n2\n");
        assert_eq!(out.text("part-00000002.csv"), "id\n3\n");
        assert_eq!(out.text("part-00000003.csv"), "id\n4\n");
        assert_eq!(out.staged(), Vec::<String>::new());
    }

    fn a_prepare_that_fails_midway_stages_the_rest_next_time_in_order(out: &Output) {
        let (mut sink, allowed) = flaky_sink(out, Some(1));
        sink.write(&batch(&[1, 2, 3])).expect("write");
        allowed.store(1, Ordering::SeqCst);
        sink.prepare(1).expect_err("down after one part");
        allowed.store(usize::MAX, Ordering::SeqCst);
        sink.write(&batch(&[4])).expect("write");
        let staged = sink.prepare(2).expect("prepare").expect("parts");
        let names: Vec<String> = parts_of(&staged).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "part-00000001-000.csv",
                "part-00000001-001.csv",
                "part-00000001-002.csv",
                "part-00000002-000.csv"
            ]
        );
        sink.commit(&staged).expect("commit");
        let texts: Vec<String> = names.iter().map(|n| out.text(n)).collect();
        assert_eq!(texts, ["id\n1\n", "id\n2\n", "id\n3\n", "id\n4\n"]);
        sink.close().expect("close");
        assert_eq!(out.staged(), Vec::<String>::new());
    }

    fn a_staged_part_is_invisible_until_commit(out: &Output) {
        let mut sink = sink(out);
        let staged = stage(&mut sink, 1, &[1, 2]);
        assert_eq!(out.published(), Vec::<String>::new());
        assert_eq!(out.staged(), ["part-00000001.csv"]);
        assert_eq!(staged.parts.len(), 1);
        assert_eq!(staged.parts[0].rows, 2);
        sink.commit(&staged).expect("commit");
        assert_eq!(out.published(), ["part-00000001.csv"]);
        assert_eq!(out.text("part-00000001.csv"), "id\n1\n2\n");
        assert_eq!(out.staged(), Vec::<String>::new());
    }

    fn recover_publishes_what_a_crash_left_prepared(out: &Output) {
        let mut first = sink(out);
        let one = stage(&mut first, 1, &[1]);
        first.commit(&one).expect("commit");
        let two = stage(&mut first, 2, &[2, 3]);
        drop(first); // the crash: checkpoint 2 is durable, its commit never ran

        let mut second = sink(out);
        second.recover(2, &[two]).expect("recover");
        assert_eq!(out.published(), ["part-00000001.csv", "part-00000002.csv"]);
        assert_eq!(out.text("part-00000002.csv"), "id\n2\n3\n");
        assert_eq!(out.staged(), Vec::<String>::new());
    }

    fn recover_deletes_leftovers_of_later_epochs_and_the_run_goes_on(out: &Output) {
        let mut first = sink(out);
        let one = stage(&mut first, 1, &[1]);
        first.commit(&one).expect("commit");
        stage(&mut first, 2, &[2]); // checkpoint 2 never became durable
        first.write(&batch(&[3])).expect("write"); // an open part of epoch 3
        drop(first);

        let mut second = sink(out);
        second
            .recover(1, std::slice::from_ref(&one))
            .expect("recover");
        assert_eq!(out.published(), ["part-00000001.csv"]);
        assert_eq!(out.staged(), Vec::<String>::new());

        let two = stage(&mut second, 2, &[20, 30]);
        second.commit(&two).expect("commit");
        assert_eq!(out.text("part-00000001.csv"), "id\n1\n");
        assert_eq!(out.text("part-00000002.csv"), "id\n20\n30\n");
    }

    fn recover_withdraws_published_parts_of_later_epochs_only(out: &Output) {
        let mut first = sink(out);
        let mut staged = Vec::new();
        for epoch in 1..=3 {
            let s = stage(&mut first, epoch, &[epoch as i64]);
            first.commit(&s).expect("commit");
            staged.push(s);
        }
        // Files that are not parts of this format are the user's: left alone.
        for other in ["notes.txt", "part-00000009.jsonl", "part-x.csv"] {
            out.put(other, "x");
        }
        drop(first);

        let mut second = sink(out);
        second.recover(1, &staged[..1]).expect("recover");
        assert_eq!(
            out.published(),
            [
                "notes.txt",
                "part-00000001.csv",
                "part-00000009.jsonl",
                "part-x.csv"
            ]
        );
        assert_eq!(out.text("part-00000001.csv"), "id\n1\n");
    }

    fn a_second_commit_is_a_no_op(out: &Output) {
        let mut sink = sink(out);
        let staged = stage(&mut sink, 1, &[7]);
        sink.commit(&staged).expect("commit");
        sink.commit(&staged).expect("commit again");
        assert_eq!(out.text("part-00000001.csv"), "id\n7\n");
        assert_eq!(out.staged(), Vec::<String>::new());
    }

    fn a_commit_with_both_files_gone_is_an_error_naming_them(out: &Output) {
        let mut sink = sink(out);
        let staged = stage(&mut sink, 1, &[7]);
        out.delete(&staged.parts[0].staged);
        let err = sink.commit(&staged).expect_err("nothing to publish");
        let message = err.to_string();
        assert!(message.contains(&staged.parts[0].staged), "{message}");
        assert!(message.contains(&staged.parts[0].target), "{message}");
        assert!(message.contains("1 rows are lost"), "{message}");
    }

    fn close_publishes_nothing_and_keeps_prepared_parts_staged(out: &Output) {
        let mut sink = sink(out);
        let staged = stage(&mut sink, 1, &[1]);
        sink.write(&batch(&[2])).expect("write");
        sink.close().expect("close");
        assert_eq!(out.published(), Vec::<String>::new());
        assert_eq!(out.staged(), ["part-00000001.csv"]);
        let address = &staged.parts[0].staged;
        assert!(
            address.ends_with("out/_staging/part-00000001.csv"),
            "{address}"
        );
    }

    fn close_without_a_prepare_publishes_nothing(out: &Output) {
        let mut sink = sink(out);
        sink.write(&batch(&[1, 2])).expect("write");
        sink.close().expect("close");
        assert_eq!(out.everything(), Vec::<String>::new());
    }

    fn an_epoch_not_after_the_last_one_is_refused(out: &Output) {
        let mut sink = sink(out);
        sink.recover(4, &[]).expect("recover");
        sink.write(&batch(&[1])).expect("write");
        let err = sink.prepare(4).expect_err("epoch 4 again");
        assert!(
            err.to_string().contains("epoch 4 prepared after epoch 4"),
            "{err}"
        );
        assert!(err.to_string().contains("out"), "{err}");
    }

    /// On object storage a part of more than one chunk goes up as a multipart upload.
    fn a_part_larger_than_an_upload_chunk_is_published_whole(out: &Output) {
        // 1.2 M ids of 8 digits: 10.8 MB of CSV, more than one 8 MiB chunk.
        let ids: Vec<i64> = (10_000_000..11_200_000).collect();
        let mut sink = sink(out);
        let staged = stage(&mut sink, 1, &ids);
        sink.commit(&staged).expect("commit");
        let text = out.text("part-00000001.csv");
        assert!(text.len() > 10 << 20, "{} bytes", text.len());
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("id"));
        assert!(lines.map(|l| l.parse::<i64>().expect("an id")).eq(ids));
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

    #[test]
    fn an_empty_or_mistyped_path_is_a_config_error() {
        let err = open_output(" ", Path::new(".")).expect_err("empty");
        assert_eq!(err.to_string(), "sink.path: must not be empty");
        let err = open_output("s3:bucket/out", Path::new(".")).expect_err("typo");
        assert!(
            err.to_string().starts_with("sink.path: `s3:bucket/out`"),
            "{err}"
        );
    }
}
