//! A script's several INSERTs run as one job, like a Flink statement set: each pipeline
//! writes what its INSERT computes (a filter checked against the CSV read by hand, a window
//! aggregation against the same INSERT run alone) and checkpoints in a folder of its own.

use std::path::Path;
use std::process::{Command, Output};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice")
}

/// The readings table over the traffic example's CSV (two malformed lines in it).
fn readings() -> String {
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/traffic.csv");
    format!(
        "CREATE TABLE readings (ts TIMESTAMP(3), segment_id BIGINT, sensor_id BIGINT, \
         speed_kmh DOUBLE, vehicles BIGINT, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'batch-rows' = '250');\n",
        csv.display()
    )
}

const SPEEDS: &str = "INSERT INTO speeds SELECT segment_id, window_start, window_end, \
     AVG(speed_kmh), COUNT(*) FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
     GROUP BY window_start, window_end, segment_id;\n";

fn speeds_table(path: &Path) -> String {
    format!(
        "CREATE TABLE speeds (segment_id BIGINT, window_start TIMESTAMP(3), window_end TIMESTAMP(3), \
         avg_speed DOUBLE, readings BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', \
         'format' = 'csv');\n",
        path.display()
    )
}

/// The data lines of a CSV file, or of every part in the folder a checkpointed (exactly-once)
/// sink writes, sorted.
fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = if path.is_dir() {
        crate::crash::published(path)
            .iter()
            .flat_map(|part| part.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
            .collect()
    } else {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.lines().skip(1).map(str::to_string).collect()
    };
    lines.sort();
    lines
}

#[test]
fn a_statement_set_runs_each_insert_into_its_own_table_and_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = |name: &str| dir.path().join(name);
    let script = format!(
        "SET 'execution.checkpointing.interval' = '1s';\n\
         SET 'state.checkpoints.dir' = '{}';\n{}{}\
         CREATE TABLE slow (segment_id BIGINT, sensor_id BIGINT, speed_kmh DOUBLE) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
         EXECUTE STATEMENT SET\nBEGIN\n{SPEEDS}\
         INSERT INTO slow SELECT segment_id, sensor_id, speed_kmh FROM readings WHERE speed_kmh < 40;\n\
         END;\n",
        out("checkpoints").display(),
        readings(),
        speeds_table(&out("speeds.csv")),
        out("slow.csv").display(),
    );
    std::fs::write(out("set.sql"), &script).expect("write script");
    let set = out("set.sql").display().to_string();
    let run = sluice(&["run", &set, "--backend", "cpu"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // Each pipeline says which it is.
    assert!(stderr.contains("set/speeds"), "{stderr}");
    assert!(stderr.contains("set/slow"), "{stderr}");

    // The filter, computed from the CSV by hand: well-formed lines under 40 km/h.
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/traffic.csv"),
    )
    .expect("read csv");
    let mut expected: Vec<String> = csv
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let [_, segment, sensor, speed, vehicles] = fields.as_slice() else {
                return None;
            };
            vehicles.parse::<i64>().ok()?;
            let speed: f64 = speed.parse().ok()?;
            (speed < 40.0).then(|| format!("{segment},{sensor},{speed:?}"))
        })
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(sorted_lines(&out("slow.csv")), expected);

    // The aggregation equals the same INSERT run alone.
    let alone = format!("{}{}{SPEEDS}", readings(), speeds_table(&out("alone.csv")));
    std::fs::write(out("alone.sql"), alone).expect("write script");
    let run = sluice(&[
        "run",
        &out("alone.sql").display().to_string(),
        "--backend",
        "cpu",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let windows = sorted_lines(&out("alone.csv"));
    assert!(windows.len() > 10);
    assert_eq!(sorted_lines(&out("speeds.csv")), windows);

    // Each pipeline checkpointed in a folder named after its table.
    let listed = sluice(&["checkpoints", &set]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    for table in ["speeds", "slow"] {
        let folder = out("checkpoints").join(table);
        assert!(folder.is_dir(), "{}: {listed}", folder.display());
        assert!(listed.contains(&format!("set/{table}:")), "{listed}");
    }
    assert!(listed.matches("id ").count() >= 2, "{listed}");

    // EXPLAIN before every INSERT prints both plans and moves nothing.
    let explained = script
        .replace("INSERT INTO", "EXPLAIN INSERT INTO")
        .replace("EXECUTE STATEMENT SET\nBEGIN\n", "")
        .replace("END;\n", "");
    std::fs::write(out("explain.sql"), explained).expect("write script");
    let plan = sluice(&["run", &out("explain.sql").display().to_string()]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("job explain/speeds") && plan.contains("job explain/slow"),
        "{plan}"
    );
}

#[test]
fn statement_set_mistakes_are_named_before_any_data_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = |inserts: &str| {
        let script = format!(
            "{}{}{inserts}",
            readings(),
            speeds_table(&dir.path().join("s.csv"))
        );
        sluice::job::JobFile::from_sql(&script, &dir.path().join("job.sql"), &[])
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default()
    };
    let twice = plan(&format!("{SPEEDS}{SPEEDS}"));
    assert!(
        twice.contains("`speeds` is written by an earlier INSERT too"),
        "{twice}"
    );
    assert!(
        twice.contains("line 4, column 1"),
        "names the second INSERT: {twice}"
    );
    let mixed = plan(&format!(
        "EXPLAIN {SPEEDS}{}",
        SPEEDS.replace("speeds", "other")
    ));
    assert!(
        mixed.contains("write EXPLAIN before every INSERT or before none"),
        "{mixed}"
    );
    let open = plan(&format!("BEGIN STATEMENT SET;\n{SPEEDS}"));
    assert!(open.contains("this statement set has no END"), "{open}");
}
