//! Credentials written into URLs (issue 12): `sluice validate` and `sluice run` refuse a
//! location or sink path holding them by the same rule, and no message repeats them, nor
//! those of an `AWS_ENDPOINT`.

use std::path::Path;
use std::process::Output;

use crate::common::proxy::{Mode, Proxy};
use crate::crash::{JOB, sluice};

const SECRET: &str = "wJalrXUt/K7MDENG+bPxRfiCY";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `sluice ARGS` in `dir` with `env` added, stdout and stderr captured.
fn sluice_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    sluice(dir, args)
        .stdout(std::process::Stdio::piped())
        .envs(env.iter().copied())
        .output()
        .expect("run sluice")
}

/// The crash job (a generator, a lookup join, windows, checkpoints) in `dir`.
fn job(dir: &Path) {
    std::fs::write(dir.join("job.toml"), JOB).expect("job");
    std::fs::write(dir.join("merchants.csv"), "merchant_id,risk\n1,7\n").expect("table");
}

#[test]
fn validate_and_run_refuse_credentials_in_a_url_alike_without_repeating_them() {
    let dir = tempfile::tempdir().expect("dir");
    job(dir.path());
    let url = format!("s3://AKIAEXAMPLE:{SECRET}@sluice-test/jobs");
    for (setting, key) in [
        (format!("checkpoint.location={url}"), "checkpoint.location"),
        (format!("sink.path={url}/out"), "sink.path"),
    ] {
        for command in ["validate", "run"] {
            let out = sluice_in(dir.path(), &[command, "job.toml", "--set", &setting], &[]);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert!(
                !out.status.success(),
                "{command} {setting}: {stdout}{stderr}"
            );
            let expected = format!(
                "{key}: `s3://***@sluice-test/jobs{}`: credentials do not belong in the URL",
                if key == "sink.path" { "/out" } else { "" }
            );
            assert!(stderr.contains(&expected), "{command}: {stderr}");
            assert!(stderr.contains("AWS_SECRET_ACCESS_KEY"), "{stderr}");
            for leak in [SECRET, "AKIAEXAMPLE"] {
                assert!(!stdout.contains(leak) && !stderr.contains(leak), "{stderr}");
            }
        }
    }
    assert!(!dir.path().join("out").exists(), "nothing ran");
}

/// The endpoint denies every request, so the job fails at once, quoting the request it
/// made: with the endpoint's credentials masked. (A password with a `/` in it makes
/// `object_store` panic while signing, before any message is written.)
#[test]
fn credentials_in_the_endpoint_are_not_repeated_in_errors() {
    let proxy = Proxy::start("127.0.0.1:9".parse().expect("an address"));
    proxy.set(Mode::Deny);
    let secret = SECRET.replace('/', "");
    let endpoint = proxy
        .url()
        .replace("http://", &format!("http://AKIAEXAMPLE:{secret}@"));
    let dir = tempfile::tempdir().expect("dir");
    job(dir.path());
    let env = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let setting = "checkpoint.location=s3://sluice-test/jobs";
    let out = sluice_in(dir.path(), &["run", "job.toml", "--set", setting], &env);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("checkpoints at s3://sluice-test/jobs: listing"),
        "{stderr}"
    );
    assert!(stderr.contains("403"), "{stderr}");
    for leak in [secret.as_str(), "AKIAEXAMPLE"] {
        assert!(!stdout.contains(leak) && !stderr.contains(leak), "{stderr}");
    }
}
