//! Exactly-once output on object storage: a checkpointed job whose sink writes its parts to
//! S3 (moto), killed with SIGKILL a few times and then allowed to finish, publishes exactly
//! the rows of an uninterrupted run and leaves no local spool folder behind.

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use sluice_engine::checkpoint::{Bucket, Place, StoreOptions, open_location};

use crate::common::s3_test_prefix;
use crate::crash::{assert_same_rows, kill_then_finish, reference};

#[test]
fn a_job_writing_its_parts_to_s3_killed_four_times_publishes_exactly_the_uninterrupted_output() {
    let Some(prefix) = s3_test_prefix("object-sink") else {
        return;
    };
    let url = format!("{prefix}/out");
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    // Spool folders go to a temporary folder of the test's own, to be counted.
    let tmp = tempfile::tempdir().expect("tmp");
    let tmpdir = tmp.path().to_str().expect("a UTF-8 temporary folder");
    let settings = [format!("sink.path={url}")];
    kill_then_finish(dir.path(), "cpu", &settings, &[("TMPDIR", tmpdir)], 4, 2027);
    // Issue 12: each killed run left its spool folder (155 MB after 50 kills); each start
    // now removes those of its output, and the last run deletes its own when it closes.
    let spools: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("list the temporary folder")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        spools,
        Vec::<std::ffi::OsString>::new(),
        "spool folders left"
    );

    let Ok(Place::Bucket(bucket)) = open_location(&url, "sink.path", &StoreOptions::default())
    else {
        panic!("{url} is not a bucket prefix");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let parts = names(&runtime, &bucket, &bucket.prefix);
    assert!(parts.len() > 5, "{} parts: {parts:?}", parts.len());
    let texts: Vec<String> = parts
        .iter()
        .map(|name| {
            let path = bucket.prefix.clone().join(name.as_str());
            let bytes = runtime
                .block_on(async { bucket.store.get(&path).await?.bytes().await })
                .expect("read a part");
            String::from_utf8(bytes.to_vec()).expect("UTF-8")
        })
        .collect();
    assert_same_rows(&texts, &expected);
    let staging = bucket.prefix.clone().join("_staging");
    let staged = names(&runtime, &bucket, &staging);
    assert_eq!(staged, Vec::<String>::new(), "nothing is left staged");
    assert!(
        !dir.path().join("out").exists(),
        "the parts went to S3, not the local folder"
    );
}

/// The names of the objects directly under `prefix`, sorted (epoch order for parts).
pub(crate) fn names(
    runtime: &tokio::runtime::Runtime,
    bucket: &Bucket,
    prefix: &ObjectPath,
) -> Vec<String> {
    let listing = runtime
        .block_on(bucket.store.list_with_delimiter(Some(prefix)))
        .expect("list");
    let mut names: Vec<String> = listing
        .objects
        .iter()
        .filter_map(|meta| meta.location.filename().map(str::to_string))
        .collect();
    names.sort();
    names
}
