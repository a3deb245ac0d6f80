//! The `sluice` binary: both examples run end to end (on the GPU too when there is one);
//! `validate` prints the documented messages; `devices` and the backend choice.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sluice(args: &[&str]) -> Output {
    sluice_env(args, &[])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_fraud_example_runs_to_stdout() {
    let out = sluice(&[
        "run",
        "examples/fraud_features.toml",
        "--backend",
        "cpu",
        "--set",
        "source.events=20000",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("| card_id | window_start"),
        "a table on stdout: {stdout}"
    );
    assert!(
        stderr.contains("backend cpu"),
        "the backend is named: {stderr}"
    );
    assert!(
        stderr.contains("events in   20000"),
        "the summary counts every event: {stderr}"
    );
}

#[test]
fn the_traffic_example_writes_csv_late_and_dead_letters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = |name: &str| dir.path().join(name).display().to_string();
    let data = root()
        .join("examples/data/traffic.csv")
        .display()
        .to_string();
    let args = [
        "run".to_string(),
        "examples/traffic.toml".into(),
        "--set".into(),
        format!("source.path={data}"),
        "--set".into(),
        format!("sink.path={}", out_path("traffic.csv")),
        "--set".into(),
        format!("late.path={}", out_path("late.csv")),
        "--set".into(),
        format!("dead_letter.path={}", out_path("dead.jsonl")),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sluice(&args);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let csv = std::fs::read_to_string(dir.path().join("traffic.csv")).expect("output");
    assert!(
        csv.starts_with("segment_id,window_start,window_end,avg_speed_kmh,vehicles,readings\n"),
        "{csv}"
    );
    // The sample has 3000 good readings, 6 of them 40 s late, and 2 malformed lines.
    assert!(stderr.contains("events in   3000"), "{stderr}");
    assert!(stderr.contains("late        6"), "{stderr}");
    assert!(stderr.contains("malformed   2"), "{stderr}");
    let late = std::fs::read_to_string(dir.path().join("late.csv")).expect("late");
    assert!(
        late.starts_with("ts,segment_id,sensor_id,speed_kmh,vehicles\n"),
        "late rows keep every column: {late}"
    );
    assert_eq!(
        late.lines().count(),
        1 + 6,
        "header and the late readings: {late}"
    );
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).expect("dead letters");
    assert!(
        dead.contains("\"line\":1203") && dead.contains("\"line\":2104"),
        "{dead}"
    );
    let readings: i64 = csv
        .lines()
        .skip(1)
        .map(|l| {
            l.rsplit(',')
                .next()
                .expect("count")
                .parse::<i64>()
                .expect("int")
        })
        .sum();
    assert_eq!(
        readings,
        3000 - 6,
        "every on-time reading is in exactly one window"
    );
}

fn validate(file: &str) -> (bool, String) {
    let path = Path::new("tests/data/jobs").join(file);
    let out = sluice(&["validate", path.to_str().expect("utf-8")]);
    (out.status.success(), text(&out.stderr))
}

#[test]
fn validate_accepts_the_examples() {
    for example in [
        "examples/fraud_features.toml",
        "examples/traffic.toml",
        "examples/traffic_incidents.toml",
        "examples/fraud_logins.toml",
        "examples/tumbling_bench.toml",
        "examples/traffic.sql",
        "examples/fraud_features.sql",
        "examples/fraud_enrich.sql",
        "examples/traffic_slowest.sql",
        "examples/traffic_fastest.sql",
    ] {
        let out = sluice(&["validate", example]);
        assert!(out.status.success(), "{example}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("ok"), "{example}");
    }
}

#[test]
fn validate_prints_the_documented_messages() {
    let cases = [
        (
            "unknown_key.toml",
            "unknown field `colum`, expected one of `column`, `watermark_delay`, `idle_timeout`",
        ),
        (
            "bad_duration.toml",
            "`10 parsecs`: unknown unit `parsecs` (use ms, s, m, h or d)",
        ),
        (
            "unknown_event_time.toml",
            "event_time.column: unknown column `time` (available: ts, card_id, merchant_id, amount_cents, country, channel)",
        ),
        (
            "unknown_column.toml",
            "operators[0].aggregates[1].column: unknown column `amount` (available: ts, card_id, merchant_id, amount_cents, country, channel)",
        ),
        (
            "bad_window.toml",
            "operators[0].window.slide: slide (120000ms) larger than size (60000ms) would skip events",
        ),
        (
            "bad_predicate.toml",
            "operators[0].predicate: syntax error at column 15 near `end of input`: expected an expression",
        ),
        (
            "type_error.toml",
            "operators[0].predicate: type error: cannot apply `+` to Utf8 and Int64",
        ),
        (
            "missing_file.toml",
            "source.path: no file matches no/such/*.csv",
        ),
    ];
    for (file, message) in cases {
        let (ok, stderr) = validate(file);
        assert!(!ok, "{file} must fail");
        assert!(
            stderr.starts_with(&format!("error: tests/data/jobs/{file}: ")),
            "{file}: {stderr}"
        );
        assert!(
            stderr.contains(message),
            "{file}: expected `{message}` in:\n{stderr}"
        );
        assert_eq!(
            stderr.matches(message).count(),
            1,
            "{file}: said once: {stderr}"
        );
    }
}

#[test]
fn run_fails_with_a_non_zero_status_on_a_bad_job() {
    let out = sluice(&["run", "tests/data/jobs/unknown_column.toml"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown column `amount`"));
    let out = sluice(&["run", "tests/data/jobs/does_not_exist.toml"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("does_not_exist.toml"));
}

#[test]
fn help_shows_examples() {
    let out = sluice(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("sluice run examples/fraud_features.toml"));
}

fn sluice_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run sluice")
}

#[test]
fn devices_says_what_auto_and_gpu_would_use() {
    let out = sluice(&["devices"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("auto"),
        "the auto choice is stated: {stdout}"
    );
}

#[test]
fn without_an_adapter_gpu_fails_before_any_data_and_auto_uses_the_cpu() {
    // WGPU_BACKEND=dx12 leaves wgpu no adapter on Linux.
    let no_gpu = [("WGPU_BACKEND", "dx12")];
    let gpu = sluice_env(
        &["run", "examples/traffic.toml", "--backend", "gpu", "-q"],
        &no_gpu,
    );
    assert!(!gpu.status.success());
    let stderr = text(&gpu.stderr);
    assert!(
        stderr.contains("no GPU adapter found") && stderr.contains("--backend cpu"),
        "{stderr}"
    );
    let auto = sluice_env(
        &[
            "run",
            "examples/fraud_features.toml",
            "--set",
            "source.events=1000",
            "--set",
            "sink.type=discard",
        ],
        &no_gpu,
    );
    let stderr = text(&auto.stderr);
    assert!(auto.status.success(), "{stderr}");
    assert!(stderr.contains("backend cpu"), "{stderr}");
}

/// Parses a CSV of numbers and text; numbers compare within `1e-9` relative.
fn same_csv(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            let (x, y): (Vec<&str>, Vec<&str>) = (x.split(',').collect(), y.split(',').collect());
            x.len() == y.len()
                && x.iter().zip(&y).all(|(u, v)| {
                    u == v
                        || matches!((u.parse::<f64>(), v.parse::<f64>()),
                            (Ok(p), Ok(q)) if (p - q).abs() <= 1e-9 * p.abs().max(q.abs()))
                })
        })
}

#[test]
fn the_traffic_example_gives_the_same_windows_on_the_gpu() {
    if sluice_engine::backend::GpuBackend::for_tests().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // The example as shipped (10 s tumbling), and the same readings in 3 s sessions.
    let example = std::fs::read_to_string(root().join("examples/traffic.toml")).expect("example");
    let tumbling = r#"window = { type = "tumbling", size = "10s" }"#;
    assert!(example.contains(tumbling), "the example's window changed");
    let data = root().join("examples/data/traffic.csv");
    let sessions = example
        .replace(tumbling, r#"window = { type = "session", gap = "3s" }"#)
        .replace(
            "path = \"data/traffic.csv\"",
            &format!("path = {:?}", data.display().to_string()),
        );
    let sessions_job = dir.path().join("sessions.toml");
    std::fs::write(&sessions_job, sessions).expect("job");
    let sessions_job = sessions_job.display().to_string();
    for job in ["examples/traffic.toml", sessions_job.as_str()] {
        let mut outputs = Vec::new();
        for backend in ["cpu", "gpu"] {
            let path = dir.path().join(format!("{backend}.csv"));
            let late_path = dir.path().join(format!("{backend}-late.csv"));
            let sink = format!("sink.path={}", path.display());
            let late = format!("late.path={}", late_path.display());
            let dead = format!(
                "dead_letter.path={}",
                dir.path().join("dead.jsonl").display()
            );
            let out = sluice(&[
                "run",
                job,
                "--backend",
                backend,
                "--set",
                &sink,
                "--set",
                &late,
                "--set",
                &dead,
            ]);
            let stderr = text(&out.stderr);
            assert!(out.status.success(), "{job} on {backend}: {stderr}");
            if backend == "gpu" {
                assert!(
                    stderr.contains("backend gpu: ") && !stderr.contains("cpu ("),
                    "the adapter is named and nothing went back to the CPU: {stderr}"
                );
            }
            outputs.push((
                std::fs::read_to_string(&path).expect("output"),
                std::fs::read_to_string(&late_path).expect("late rows"),
            ));
        }
        assert!(outputs[0].0.lines().count() > 100, "{job}");
        assert!(
            same_csv(&outputs[0].0, &outputs[1].0),
            "{job}: cpu:\n{}\ngpu:\n{}",
            outputs[0].0,
            outputs[1].0
        );
        assert_eq!(outputs[0].1, outputs[1].1, "{job}: late rows");
    }
}

#[test]
fn bench_writes_a_table_json_and_a_png() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().display().to_string();
    let mut backends = "cpu".to_string();
    if crate::common::backends().len() > 1 {
        backends.push_str(",gpu");
    }
    let out = sluice(&[
        "bench",
        "--workloads",
        "tumbling,traffic,operator",
        "--backends",
        &backends,
        "--events",
        "30000",
        "--batch-rows",
        "4096",
        "--runs",
        "1",
        "--out",
        &out_dir,
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("events/s") && stdout.contains("traffic"),
        "{stdout}"
    );
    let json = std::fs::read_to_string(dir.path().join("results.json")).expect("results.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let results = report["results"].as_array().expect("results");
    let expected = 3 * backends.split(',').count();
    assert_eq!(results.len(), expected, "{json}");
    for r in results {
        // The operator workload runs whole batches: 30,000 events round up to 8 of 4096.
        let events = if r["workload"] == "operator" {
            32768
        } else {
            30000
        };
        assert_eq!(r["events"], events, "every event counted: {r}");
        assert!(
            r["events_per_second"].as_f64().is_some_and(|v| v > 0.0),
            "{r}"
        );
        assert!(r["rows_out"].as_u64().is_some_and(|n| n > 0), "{r}");
        let cpu = results
            .iter()
            .find(|c| c["workload"] == r["workload"] && c["backend"] == "cpu")
            .expect("a cpu run of every workload");
        assert_eq!(
            r["rows_out"], cpu["rows_out"],
            "same rows on every backend: {r}"
        );
    }
    let png = std::fs::read(dir.path().join("results.png")).expect("results.png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
}

#[test]
fn the_fraud_enrich_example_joins_the_merchant_table() {
    let out = sluice(&[
        "run",
        "examples/fraud_enrich.toml",
        "--backend",
        "cpu",
        "--set",
        "source.events=40000",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("| card_id | window_start") && stdout.contains("risky_merchants"),
        "a table of risky cards on stdout: {stdout}"
    );
    assert!(stderr.contains("events in   40000"), "{stderr}");
}

#[test]
fn a_lookup_join_with_an_unknown_table_column_fails_before_any_data_moves() {
    let dir = tempfile::tempdir().expect("dir");
    let table = root().join("examples/data/merchants.csv");
    let job = std::fs::read_to_string(root().join("examples/fraud_enrich.toml"))
        .expect("example")
        .replace("data/merchants.csv", &table.display().to_string())
        .replace(
            "on = \"merchant_id\"",
            "on = \"merchant_id\"\ntable_on = \"merchant\"",
        );
    let path = dir.path().join("job.toml");
    std::fs::write(&path, job).expect("job");
    let out = sluice(&["validate", &path.display().to_string()]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("operators[0].table_on[0]: table `merchants` has no column `merchant`"),
        "{stderr}"
    );
}

#[test]
fn a_lookup_table_reload_must_be_positive_and_a_good_one_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let table = root().join("examples/data/merchants.csv");
    let job = |reload: &str| {
        std::fs::read_to_string(root().join("examples/fraud_enrich.toml"))
            .expect("example")
            .replace("data/merchants.csv", &table.display().to_string())
            .replace(
                "on = \"merchant_id\"",
                &format!("on = \"merchant_id\"\nreload = \"{reload}\""),
            )
    };
    let path = dir.path().join("job.toml");
    std::fs::write(&path, job("0s")).expect("job");
    let out = sluice(&["validate", &path.display().to_string()]);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("operators[0].reload: must be a positive duration"),
        "{stderr}"
    );
    std::fs::write(&path, job("10ms")).expect("job");
    let out = sluice(&[
        "run",
        &path.display().to_string(),
        "--backend",
        "cpu",
        "--set",
        "source.events=20000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("risky_merchants"));
}

/// The well-formed data rows of a shipped CSV (the traffic sample has malformed lines on
/// purpose: they are dead letters, not readings), split into fields.
fn csv_rows(file: &str, fields: usize, number: Option<usize>) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(root().join(file)).expect("sample");
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() == fields && f.iter().skip(1).all(|v| !v.is_empty()))
        .filter(|f| number.is_none_or(|n| f[n].parse::<f64>().is_ok()))
        .collect()
}

#[test]
fn the_traffic_incidents_example_joins_readings_with_incidents_of_the_same_minute() {
    let dir = tempfile::tempdir().expect("dir");
    let out_path = dir.path().join("joined.csv");
    let late_path = dir.path().join("late.csv");
    let out = sluice(&[
        "run",
        "examples/traffic_incidents.toml",
        "--backend",
        "cpu",
        "--set",
        &format!("sink.path={}", out_path.display()),
        "--set",
        &format!("late.path={}", late_path.display()),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Expected, by hand: readings (ts, segment, sensor, speed, vehicles) under 60 km/h and
    // incidents (ts, segment, id, kind, severity) on the same segment whose times share the
    // minute (the samples lie within one hour of one day, so the minute is the first 16
    // characters of the RFC 3339 time).
    let readings = csv_rows("examples/data/traffic.csv", 5, Some(3));
    let incidents = csv_rows("examples/data/incidents.csv", 5, None);
    let mut want: Vec<(String, String, String)> = Vec::new();
    for r in &readings {
        if r[3].parse::<f64>().expect("speed") >= 60.0 {
            continue;
        }
        for i in &incidents {
            if r[1] == i[1] && r[0][..16] == i[0][..16] {
                want.push((r[0].clone(), r[2].clone(), i[2].clone()));
            }
        }
    }
    want.sort();
    let joined = std::fs::read_to_string(&out_path).expect("output");
    let mut lines = joined.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let at = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name} in {header:?}"))
    };
    let (ts, sensor, incident) = (at("speeds.ts"), at("sensor_id"), at("incident_id"));
    let mut got: Vec<(String, String, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[ts].to_string(),
                f[sensor].to_string(),
                f[incident].to_string(),
            )
        })
        .collect();
    got.sort();
    // The CSV sink writes times without trailing zero milliseconds; compare the instants.
    let normal = |t: &str| {
        t.replace(".000Z", "Z")
            .replace("00Z", "Z")
            .replace("0Z", "Z")
    };
    let got: Vec<_> = got
        .into_iter()
        .map(|(t, s, i)| (normal(&t), s, i))
        .collect();
    let mut want: Vec<_> = want
        .into_iter()
        .map(|(t, s, i)| (normal(&t), s, i))
        .collect();
    want.sort();
    let mut got = got;
    got.sort();
    assert!(want.len() > 20, "{} joined readings", want.len());
    assert_eq!(got, want);
}

#[test]
fn bad_join_jobs_fail_before_any_data_moves_naming_the_setting() {
    let data = root().join("examples/data").display().to_string();
    let example = std::fs::read_to_string(root().join("examples/traffic_incidents.toml"))
        .expect("example")
        .replace("path = \"data/", &format!("path = \"{data}/"));
    let cases = [
        (example.replace("left = \"speeds\"", "left = \"speed\""), "join.left: no stream `speed` (the streams are incidents, speeds)"),
        (example.replace("window = { type = \"tumbling\", size = \"1m\" }", ""), "join.window"),
        (example.replace("type = \"window\"\nleft", "type = \"interval\"\nleft"), "join.window"),
        (example.replace("on = \"segment_id\"", "on = \"segment\""), "join.on[0]"),
        (format!("{example}\n[source]\ntype = \"generator\"\ngenerator = \"transactions\"\n"), "either `source` and `event_time`, or `[streams.<name>]`"),
        (
            example.replace("[streams.incidents]", "[[streams.speeds.operators]]\ntype = \"window\"\nkey = \"segment_id\"\nwindow = { type = \"tumbling\", size = \"1m\" }\naggregates = [{ fn = \"count\" }]\n\n[streams.incidents]"),
            "streams.speeds.operators[0]",
        ),
        (
            example.replace(
                "incidents.csv\" }\nevent_time = { column = \"ts\"",
                "incidents.csv\" }\nevent_time = { column = \"time\"",
            ),
            "streams.incidents.event_time.column",
        ),
    ];
    let dir = tempfile::tempdir().expect("dir");
    for (i, (job, message)) in cases.iter().enumerate() {
        assert_ne!(job, &example, "case {i} changed the job");
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, job).expect("job");
        let out = sluice(&["validate", path.to_str().expect("utf-8")]);
        assert!(!out.status.success(), "case {i} must fail");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(message),
            "case {i}: expected `{message}` in {stderr}"
        );
    }
}

/// Issue 12: `upper = "-1s"` (and `-1000`) was refused although jobs.md allows a negative
/// bound while `lower + upper >= 0`. A job file joining two CSV streams, left rows 1-3 s
/// before right rows of the same key, gives the pairs a nested loop over the files finds.
#[test]
fn an_interval_join_with_a_negative_bound_equals_a_nested_loop() {
    let dir = tempfile::tempdir().expect("dir");
    let mut rng = crate::common::Rng::new(12);
    let mut left = vec![(0i64, 0i64, 0i64); 0];
    let mut right = vec![(0i64, 0i64, 0i64); 0];
    for i in 0..400 {
        left.push((i * 50 + rng.below(40) as i64, rng.below(6) as i64, i));
        right.push((
            i * 50 + rng.below(40) as i64,
            rng.below(6) as i64,
            10_000 + i,
        ));
    }
    let write = |name: &str, id: &str, rows: &[(i64, i64, i64)]| {
        let mut text = format!("ts,k,{id}\n");
        for (ts, k, i) in rows {
            text.push_str(&format!("{ts},{k},{i}\n"));
        }
        std::fs::write(dir.path().join(name), text).expect("csv");
    };
    write("left.csv", "lid", &left);
    write("right.csv", "rid", &right);
    let job = dir.path().join("join.toml");
    std::fs::write(
        &job,
        "[streams.l]\nsource = { type = \"csv\", path = \"left.csv\" }\n\
         event_time = { column = \"ts\", watermark_delay = \"100ms\" }\n\
         [streams.r]\nsource = { type = \"csv\", path = \"right.csv\" }\n\
         event_time = { column = \"ts\", watermark_delay = \"100ms\" }\n\
         [join]\ntype = \"interval\"\nleft = \"l\"\nright = \"r\"\non = \"k\"\n\
         lower = \"3s\"\nupper = \"-1s\"\n\
         [sink]\ntype = \"csv\"\npath = \"out.csv\"\n",
    )
    .expect("job");
    // left.ts BETWEEN right.ts - 3000 AND right.ts - 1000, on equal keys.
    let mut want: Vec<(i64, i64)> = Vec::new();
    for l in &left {
        for r in &right {
            if l.1 == r.1 && l.0 >= r.0 - 3_000 && l.0 <= r.0 - 1_000 {
                want.push((l.2, r.2));
            }
        }
    }
    want.sort();
    assert!(want.len() > 100, "{} pairs", want.len());
    let job = job.to_str().expect("utf-8");
    for upper in [None, Some("join.upper=-1000")] {
        let mut args = vec!["run", job, "--backend", "cpu"];
        if let Some(set) = upper {
            args.extend(["--set", set]);
        }
        let out = sluice(&args);
        assert!(out.status.success(), "{upper:?}: {}", text(&out.stderr));
        let rows = std::fs::read_to_string(dir.path().join("out.csv")).expect("output");
        let mut lines = rows.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let at = |name: &str| header.iter().position(|h| *h == name).expect("column");
        let (lid, rid) = (at("lid"), at("rid"));
        let mut got: Vec<(i64, i64)> = lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[lid].parse().expect("lid"), f[rid].parse().expect("rid"))
            })
            .collect();
        got.sort();
        assert_eq!(got, want, "{upper:?}");
    }
    // An empty interval is still refused, naming the setting.
    let out = sluice(&["validate", job, "--set", "join.upper=-4s"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("join.lower"),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 12: `[late]` on a job whose only join is a lookup join. The docs and the check agree
/// now (a lookup join finds nothing late), and `validate` refuses it as `run` does.
#[test]
fn a_late_sink_without_a_window_or_stream_join_is_refused_by_validate_and_run() {
    let dir = tempfile::tempdir().expect("dir");
    let table = root().join("examples/data/merchants.csv");
    let job = format!(
        "[source]\ntype = \"generator\"\ngenerator = \"transactions\"\nevents = 100\n\
         [event_time]\ncolumn = \"ts\"\n\
         [[operators]]\ntype = \"lookup_join\"\ntable = {{ type = \"csv\", path = \"{}\" }}\n\
         on = \"merchant_id\"\n\
         [sink]\ntype = \"discard\"\n[late]\ntype = \"discard\"\n",
        table.display()
    );
    let path = dir.path().join("job.toml");
    std::fs::write(&path, job).expect("job");
    let path = path.display().to_string();
    for command in ["validate", "run"] {
        let out = sluice(&[command, &path]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{command} must refuse");
        assert!(
            stderr.contains("late: a late sink needs a window operator or a stream join"),
            "{command}: {stderr}"
        );
    }
    // Without `[late]` the same job runs.
    let job = std::fs::read_to_string(&path).expect("job");
    std::fs::write(&path, job.replace("[late]\ntype = \"discard\"\n", "")).expect("job");
    let out = sluice(&["run", &path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Issue 12: on a machine without a desktop, Mesa's device-select layer printed `error:
/// XDG_RUNTIME_DIR is invalid or not set in the environment.` twice while `auto` looked for
/// an adapter, and in `sluice devices`. Nobody asked for that line; now nothing prints it,
/// and a job that asks for the GPU names the adapter it got.
#[test]
fn looking_for_a_gpu_prints_no_display_server_noise() {
    let quiet = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("NODEVICE_SELECT")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run sluice");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!all.contains("XDG_RUNTIME_DIR"), "{args:?}: {all}");
        all
    };
    quiet(&["devices"]);
    let job = [
        "run",
        "examples/fraud_features.toml",
        "--set",
        "source.events=2000",
    ];
    let auto = quiet(&[&job[..], &["--set", "sink.type=discard"]].concat());
    assert!(auto.contains("backend "), "the backend is named: {auto}");
    if crate::common::backends().len() > 1 {
        let gpu = quiet(
            &[
                &job[..],
                &["--set", "sink.type=discard", "--backend", "gpu"],
            ]
            .concat(),
        );
        assert!(gpu.contains("backend gpu: "), "the adapter is named: {gpu}");
    }
}

/// `sluice sql` on the CPU, in the SQL logic tests' data folder, with `script` on its input.
fn sql_shell(script: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["sql", "--backend", "cpu"])
        .current_dir(root().join("tests/slt/data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice sql");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    child.wait_with_output().expect("sluice sql ends")
}

#[test]
fn the_sql_shell_keeps_definitions_streams_rows_and_carries_on_after_an_error() {
    let script = "CREATE TABLE payments (ts TIMESTAMP(3), card BIGINT, shop BIGINT, cents BIGINT,\n\
                    country STRING, WATERMARK FOR ts AS ts)\n\
                  WITH ('connector' = 'filesystem', 'path' = 'payments.csv', 'format' = 'csv');\n\
                  SELECT nope FROM payments;\n\
                  SELECT card, SUM(cents) AS total\n\
                  FROM TABLE(TUMBLE(TABLE payments, DESCRIPTOR(ts), INTERVAL '30' SECOND))\n\
                  GROUP BY window_start, window_end, card;\n\
                  EXPLAIN SELECT card FROM payments WHERE country LIKE 'E%';\n";
    let out = sql_shell(script);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // One statement failed: the exit status says so, and the rest still ran.
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("error: line 1, column 8: unknown column `nope`"),
        "{stderr}"
    );
    // Card 1: 100 + 50 + 700 + 300; card 2: 250 (and a null).
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(
        rows,
        ["| card | total |", "| 1    | 1150  |", "| 2    | 250   |"],
        "{stdout}"
    );
    assert!(stderr.contains("2 row(s)"), "{stderr}");
    assert!(
        stdout.contains(" 1. filter   country like 'E%'"),
        "{stdout}"
    );
}

#[test]
fn the_sql_shell_runs_a_statement_set_block_as_one_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = |name: &str| {
        format!(
            "CREATE TABLE {name} (card BIGINT, cents BIGINT) WITH ('connector' = 'filesystem', \
             'path' = '{}', 'format' = 'csv');\n",
            dir.path().join(format!("{name}.csv")).display()
        )
    };
    let script = format!(
        "CREATE TABLE payments (ts TIMESTAMP(3), card BIGINT, shop BIGINT, cents BIGINT,\n\
           country STRING, WATERMARK FOR ts AS ts)\n\
         WITH ('connector' = 'filesystem', 'path' = 'payments.csv', 'format' = 'csv');\n\
         {}{}EXECUTE STATEMENT SET\nBEGIN\n\
         INSERT INTO big SELECT card, cents FROM payments WHERE cents >= 300;\n\
         INSERT INTO fr SELECT card, cents FROM payments WHERE country = 'FR';\n\
         END;\n",
        sink("big"),
        sink("fr")
    );
    let out = sql_shell(&script);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // payments.csv by hand: 700 and 300 are at least 300; card 1's 100, 50 and 300 are FR.
    assert!(stderr.contains("5 row(s) written"), "{stderr}");
    let rows = |name: &str| -> Vec<String> {
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.csv"))).expect(name);
        let mut rows: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
        rows.sort();
        rows
    };
    assert_eq!(rows("big"), ["1,300", "1,700"]);
    assert_eq!(rows("fr"), ["1,100", "1,300", "1,50"]);
}
