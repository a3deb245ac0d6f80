//! Where the exactly-once cases run: a local folder, an in-memory bucket and a prefix of the
//! S3 test bucket, all read back through `object_store`, so that one case checks every store.
//!
//! S3 cases read `SLUICE_TEST_S3` (`s3://bucket`, with AWS_ENDPOINT, AWS_ALLOW_HTTP and
//! credentials in the environment; scripts/test starts moto and sets them). Without it they
//! print why and pass, unless `REQUIRE_S3=1`, which makes them fail instead. Each case works
//! under its own prefix.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sluice_engine::checkpoint::{Bucket, Place, StoreOptions, open_location};
use tokio::runtime::Runtime;

use super::object_parts::ObjectParts;
use super::parts::{PartSink, PartStore, PartWriter, STAGING, open_output};

/// Runs each case, a `fn(&Output)`, as the tests `CASE::local`, `CASE::memory` and `CASE::s3`.
macro_rules! on_every_output {
    ($($case:ident),+ $(,)?) => {$(
        mod $case {
            use $crate::sink::outputs::Output;

            #[test]
            fn local() {
                super::$case(&Output::local());
            }

            #[test]
            fn memory() {
                super::$case(&Output::memory());
            }

            #[test]
            fn s3() {
                if let Some(output) = Output::s3(stringify!($case)) {
                    super::$case(&output);
                }
            }
        }
    )+};
}
pub(crate) use on_every_output;

/// Writes `epochs` (batches per epoch, from epoch 1), preparing and committing each, then
/// closes the sink; returns the staged row counts of each epoch that staged anything (an
/// epoch without rows must stage nothing).
pub(crate) fn commit_epochs<W: PartWriter>(
    sink: &mut PartSink<W>,
    epochs: &[Vec<arrow::array::RecordBatch>],
) -> Vec<Vec<u64>> {
    use sluice_engine::sink::Sink;
    let mut rows = Vec::new();
    for (epoch, batches) in (1..).zip(epochs) {
        for b in batches {
            sink.write(b).expect("write");
        }
        match sink.prepare(epoch).expect("prepare") {
            Some(staged) => {
                sink.commit(&staged).expect("commit");
                rows.push(staged.parts.iter().map(|p| p.rows).collect());
            }
            None => assert!(batches.is_empty(), "epoch {epoch} staged nothing"),
        }
    }
    sink.close().expect("close");
    rows
}

/// The output of an exactly-once sink, empty at first, which any number of sinks (a first
/// run, a restart) open in turn.
#[derive(Debug)]
pub(crate) struct Output {
    /// What a sink opens: `sink.path`, or an in-memory bucket.
    at: At,
    /// The same output as the cases see it.
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: Runtime,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Debug)]
enum At {
    Path(String),
    Memory(Bucket),
}

impl Output {
    /// The folder `out` of a fresh temporary folder.
    pub(crate) fn local() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out");
        let store = LocalFileSystem::new_with_prefix(dir.path()).expect("local store");
        Output::new(
            At::Path(path_text(&path)),
            Arc::new(store),
            "out",
            Some(dir),
        )
    }

    /// `memory://bucket/out`, in a fresh in-memory store.
    pub(crate) fn memory() -> Self {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let bucket = Bucket {
            store: store.clone(),
            prefix: ObjectPath::from("out"),
            url: "memory://bucket".into(),
        };
        Output::new(At::Memory(bucket), store, "out", None)
    }

    /// `{SLUICE_TEST_S3}/{case}-{pid}-{nanos}/out`, or `None` (with the reason printed) when
    /// no S3 server is configured.
    pub(crate) fn s3(case: &str) -> Option<Self> {
        let base = std::env::var("SLUICE_TEST_S3").unwrap_or_default();
        if base.is_empty() {
            let why = "SLUICE_TEST_S3 is not set (scripts/test starts moto and sets it)";
            assert!(
                std::env::var("REQUIRE_S3").as_deref() != Ok("1"),
                "{case}: {why}, and REQUIRE_S3=1 forbids skipping"
            );
            eprintln!("skipping {case} on S3: {why}");
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let url = format!(
            "{}/{case}-{}-{nanos}/out",
            base.trim_end_matches('/'),
            std::process::id()
        );
        let place = open_location(&url, "sink.path", &StoreOptions::default());
        let Ok(Place::Bucket(bucket)) = place else {
            panic!("SLUICE_TEST_S3={base} is not a bucket URL: {place:?}");
        };
        let prefix = bucket.prefix.to_string();
        Some(Output::new(At::Path(url), bucket.store, &prefix, None))
    }

    fn new(
        at: At,
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Output {
            at,
            store,
            prefix: ObjectPath::from(prefix),
            runtime,
            _dir: dir,
        }
    }

    /// A sink of format `W` on this output, as a fresh run of the job would open it.
    pub(crate) fn sink<W: PartWriter>(
        &self,
        options: W::Options,
        rotate_rows: Option<usize>,
    ) -> PartSink<W> {
        PartSink::new(self.part_store(), options, rotate_rows).expect("sink")
    }

    /// This output as a sink's store of parts.
    pub(crate) fn part_store(&self) -> Box<dyn PartStore> {
        match &self.at {
            At::Path(path) => open_output(path, Path::new("/")).expect("open the output"),
            At::Memory(bucket) => {
                let name = format!("{}/{}", bucket.url, bucket.prefix);
                Box::new(ObjectParts::new(&name, bucket.clone()).expect("memory parts"))
            }
        }
    }

    /// The names in the output (the staging area excluded), sorted as a reader of
    /// `part-*` sees them.
    pub(crate) fn published(&self) -> Vec<String> {
        self.names(&self.prefix)
    }

    /// The names in the staging area, sorted.
    pub(crate) fn staged(&self) -> Vec<String> {
        self.names(&self.prefix.clone().join(STAGING))
    }

    fn names(&self, prefix: &ObjectPath) -> Vec<String> {
        let listing = self.store.list_with_delimiter(Some(prefix));
        let listing = self.runtime.block_on(listing).expect("list");
        let mut names: Vec<String> = listing
            .objects
            .iter()
            .filter_map(|meta| meta.location.filename().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// Every object of the output, staging area included.
    pub(crate) fn everything(&self) -> Vec<String> {
        let listing = self.store.list(Some(&self.prefix)).try_collect::<Vec<_>>();
        let metas = self.runtime.block_on(listing).expect("list");
        let mut names: Vec<String> = metas.iter().map(|m| m.location.to_string()).collect();
        names.sort();
        names
    }

    /// The published part `name`.
    pub(crate) fn read(&self, name: &str) -> Bytes {
        let path = self.prefix.clone().join(name);
        let bytes = async { self.store.get(&path).await?.bytes().await };
        self.runtime.block_on(bytes).expect("read a part")
    }

    /// The published part `name` as text.
    pub(crate) fn text(&self, name: &str) -> String {
        String::from_utf8(self.read(name).to_vec()).expect("UTF-8")
    }

    /// Writes `name` into the output, as someone other than the sink would.
    pub(crate) fn put(&self, name: &str, text: &str) {
        let path = self.prefix.clone().join(name);
        let put = self.store.put(&path, PutPayload::from(text.to_string()));
        self.runtime.block_on(put).expect("put");
    }

    /// Deletes what the address of a staged or published part names.
    pub(crate) fn delete(&self, address: &str) {
        let name = address.rsplit('/').next().expect("a name");
        let folder = if address.contains(&format!("/{STAGING}/")) {
            self.prefix.clone().join(STAGING)
        } else {
            self.prefix.clone()
        };
        let path = folder.join(name);
        self.runtime
            .block_on(self.store.delete(&path))
            .expect("delete");
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary folder").to_string()
}
