//! The store's cases against a real S3 server (moto, started by scripts/test), and retries
//! against a port where nothing listens.
//!
//! S3 tests read `SLUICE_TEST_S3` (`s3://bucket`, with AWS_ENDPOINT, AWS_ALLOW_HTTP and
//! credentials in the environment). Without it they print why and pass, unless
//! `REQUIRE_S3=1`, which makes them fail instead. Each test works under its own prefix.

use std::time::{Duration, Instant};

use object_store::{BackoffConfig, RetryConfig};

use super::store::tests as cases;
use super::{CheckpointStore, StoreOptions};
use crate::error::Error;

/// A store under a fresh prefix of the test bucket, or `None` (with the reason printed)
/// when no S3 server is configured.
fn s3(test: &str) -> Option<CheckpointStore> {
    let base = std::env::var("SLUICE_TEST_S3").unwrap_or_default();
    if base.is_empty() {
        let why = "SLUICE_TEST_S3 is not set (scripts/test starts moto and sets it)";
        assert!(
            std::env::var("REQUIRE_S3").as_deref() != Ok("1"),
            "{test}: {why}, and REQUIRE_S3=1 forbids skipping"
        );
        eprintln!("skipping {test}: {why}");
        return None;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let location = format!(
        "{}/{test}-{}-{nanos}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    Some(CheckpointStore::open(&location).expect("open the test bucket"))
}

#[tokio::test]
async fn round_trip_on_s3() {
    if let Some(store) = s3("round_trip") {
        cases::round_trip(&store).await;
    }
}

#[tokio::test]
async fn damaged_checkpoints_are_skipped_on_s3() {
    if let Some(store) = s3("damaged") {
        cases::damaged_checkpoints_are_skipped(&store).await;
    }
}

#[tokio::test]
async fn retention_on_s3() {
    if let Some(store) = s3("retention") {
        cases::retention(&store).await;
    }
}

#[tokio::test]
async fn deletion_on_s3() {
    if let Some(store) = s3("deletion") {
        cases::deletion(&store).await;
    }
}

/// Needs no server: the port is closed, so every request is refused and retried until the
/// (tiny) budget runs out; the error must then name the location and the object, and
/// reading must fail too rather than report "no checkpoints".
#[tokio::test]
async fn an_unreachable_store_fails_after_its_retries_naming_the_object() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let options = StoreOptions {
        retry: RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(50),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: Duration::from_secs(2),
        },
        request_timeout: Some(Duration::from_secs(1)),
        connect_timeout: Some(Duration::from_millis(500)),
        settings: Vec::new(),
    }
    // Static credentials and region, so that nothing asks a metadata service.
    .with_setting("aws_endpoint", format!("http://127.0.0.1:{port}"))
    .with_setting("aws_allow_http", "true")
    .with_setting("aws_access_key_id", "test")
    .with_setting("aws_secret_access_key", "test")
    .with_setting("aws_region", "us-east-1");
    let location = "s3://sluice-test/unreachable";
    let store = CheckpointStore::open_with(location, &options).expect("open");

    let started = Instant::now();
    let err = store
        .write(cases::checkpoint(1, "x"))
        .await
        .expect_err("nothing listens");
    let took = started.elapsed();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
    let text = err.to_string();
    let expected = format!(
        "checkpoints at {location}: writing unreachable/chk-00000000000000000001/state/window-0.arrow: "
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(text.contains("after 2 retries"), "{text}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let err = store
        .load_latest()
        .await
        .expect_err("unreachable")
        .to_string();
    assert!(
        err.starts_with(&format!("checkpoints at {location}: listing")),
        "{err}"
    );
}
