//! Storage outages (issue 12): a checkpointed job whose checkpoints and output go to S3
//! (moto) through a proxy that refuses connections for 2, 8 or 20 s, freezes them, or denies
//! every request for a while, stays alive and publishes exactly the uninterrupted run's rows;
//! a job whose checkpoints fail more often in a row than it tolerates fails, and running it
//! again still publishes exactly those rows.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use sluice_engine::checkpoint::{Place, StoreOptions, open_location};

use crate::common::proxy::{Mode, Proxy};
use crate::common::s3_test_prefix;
use crate::crash::{assert_same_rows, reference, sluice};
use crate::object_sink::names;

/// When the outage starts: a second into the job's four seconds of input.
const OUTAGE_AT: Duration = Duration::from_secs(1);

/// A test's S3 prefix and a proxy in front of the S3 server, or `None` (with the reason
/// printed) when no S3 server is configured.
fn through_proxy(name: &str) -> Option<(String, Proxy)> {
    let prefix = s3_test_prefix(name)?;
    let endpoint = std::env::var("AWS_ENDPOINT").expect("SLUICE_TEST_S3 comes with AWS_ENDPOINT");
    let upstream: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_socket_addrs()
        .expect("AWS_ENDPOINT is host:port")
        .next()
        .expect("an address");
    Some((prefix, Proxy::start(upstream)))
}

/// Starts the crash job (`crash::JOB`: 40 000 events over four seconds, checkpoints every
/// 100 ms) in `dir` with its checkpoints and output under `prefix`, reaching S3 through
/// `proxy`, with `settings` (`--set` values) and `env` added; stderr goes to a file.
fn start(
    dir: &Path,
    prefix: &str,
    proxy: &Proxy,
    settings: &[&str],
    env: &[(&str, &str)],
) -> Child {
    let location = format!("checkpoint.location={prefix}/checkpoints");
    let output = format!("sink.path={prefix}/out");
    let mut args = vec!["run", "job.toml", "--backend", "cpu", "--quiet"];
    for s in [location.as_str(), output.as_str()].iter().chain(settings) {
        args.extend(["--set", s]);
    }
    let stderr = std::fs::File::create(dir.join("stderr.txt")).expect("stderr file");
    sluice(dir, &args)
        .env("AWS_ENDPOINT", proxy.url())
        .envs(env.iter().copied())
        .stderr(stderr)
        .spawn()
        .expect("spawn")
}

/// Waits for `child` for at most `limit`.
fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the job ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default()
}

/// The published parts under `prefix/out` hold exactly `expected`, and nothing is staged.
fn assert_published_on_s3(prefix: &str, expected: &[String]) {
    let url = format!("{prefix}/out");
    let Ok(Place::Bucket(bucket)) = open_location(&url, "sink.path", &StoreOptions::default())
    else {
        panic!("{url} is not a bucket prefix");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let texts: Vec<String> = names(&runtime, &bucket, &bucket.prefix)
        .iter()
        .map(|name| {
            let path = bucket.prefix.clone().join(name.as_str());
            let bytes = runtime
                .block_on(async { bucket.store.get(&path).await?.bytes().await })
                .expect("read a part");
            String::from_utf8(bytes.to_vec()).expect("UTF-8")
        })
        .collect();
    assert_same_rows(&texts, expected);
    let staging = bucket.prefix.clone().join("_staging");
    let staged = names(&runtime, &bucket, &staging);
    assert_eq!(staged, Vec::<String>::new(), "nothing is left staged");
}

/// Runs the job through `mode` lasting `span`, from [`OUTAGE_AT`] on: it must be alive when
/// the outage ends, finish, and publish exactly the uninterrupted rows.
fn survives(name: &str, mode: Mode, span: Duration, settings: &[&str], env: &[(&str, &str)]) {
    let Some((prefix, proxy)) = through_proxy(name) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    let mut job = start(dir.path(), &prefix, &proxy, settings, env);
    std::thread::sleep(OUTAGE_AT);
    proxy.set(mode);
    std::thread::sleep(span);
    let alive = job.try_wait().expect("poll").is_none();
    proxy.set(Mode::Forward);
    assert!(
        alive,
        "the job died during the outage: {}",
        stderr(dir.path())
    );
    let status = wait(&mut job, Duration::from_secs(120));
    assert!(status.success(), "{}", stderr(dir.path()));
    assert_published_on_s3(&prefix, &expected);
}

#[test]
fn storage_refusing_connections_for_2s_is_ridden_out() {
    survives("refused-2s", Mode::Refuse, Duration::from_secs(2), &[], &[]);
}

#[test]
fn storage_refusing_connections_for_8s_is_ridden_out() {
    survives("refused-8s", Mode::Refuse, Duration::from_secs(8), &[], &[]);
}

#[test]
fn storage_refusing_connections_for_20s_is_ridden_out() {
    survives(
        "refused-20s",
        Mode::Refuse,
        Duration::from_secs(20),
        &[],
        &[],
    );
}

/// Requests into a frozen server hang until their timeout (3 s here, `AWS_TIMEOUT`, instead
/// of 30 s), then are retried; those sent after the freeze go through.
#[test]
fn a_frozen_storage_server_is_ridden_out() {
    let timeout = [("AWS_TIMEOUT", "3s")];
    survives(
        "frozen",
        Mode::Freeze,
        Duration::from_secs(8),
        &[],
        &timeout,
    );
}

/// Denied requests are not retried: each checkpoint fails at once (writing it, or a sink
/// staging or publishing), a dozen in a row, all tolerated.
#[test]
fn checkpoints_failing_for_a_while_are_tolerated_and_the_output_is_exact() {
    let tolerate = ["checkpoint.tolerable_failures=1000"];
    survives(
        "denied",
        Mode::Deny,
        Duration::from_millis(1500),
        &tolerate,
        &[],
    );
}

#[test]
fn more_failed_checkpoints_in_a_row_than_tolerated_fail_the_job_and_a_rerun_is_exact() {
    let Some((prefix, proxy)) = through_proxy("intolerable") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    let tolerate = ["checkpoint.tolerable_failures=2"];
    let mut job = start(dir.path(), &prefix, &proxy, &tolerate, &[]);
    std::thread::sleep(OUTAGE_AT);
    proxy.set(Mode::Deny);
    let status = wait(&mut job, Duration::from_secs(60));
    proxy.set(Mode::Forward);
    let message = stderr(dir.path());
    assert!(!status.success(), "{message}");
    assert!(
        message
            .contains("3 checkpoints in a row failed, more than checkpoint.tolerable_failures = 2"),
        "{message}"
    );
    assert_eq!(
        message.matches("tolerable failures in a row").count(),
        2,
        "{message}"
    );

    let mut again = start(dir.path(), &prefix, &proxy, &[], &[]);
    let status = wait(&mut again, Duration::from_secs(60));
    assert!(status.success(), "{}", stderr(dir.path()));
    assert_published_on_s3(&prefix, &expected);
}
