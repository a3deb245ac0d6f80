//! `sluice bench`: the workstation benchmark. Runs the standard workloads on every chosen
//! backend, shows progress, prints a table (events/s, batch latency, speedup over the CPU) and
//! writes `results.json` and `results.png` into a folder.

mod chart;
mod checkpoint;
mod kafka;
mod operator;
mod scale_out;
mod workloads;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use sluice::job::{BackendChoice, JobFile};
use sluice_engine::backend::Backend;
use sluice_engine::backend::gpu::UploadRates;
use sluice_engine::metrics::{Metrics, RunSummary};
use sluice_engine::runtime::RunOptions;

pub use workloads::Workload;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub workloads: Vec<Workload>,
    /// `None`: the CPU, plus the GPU when a hardware one is present.
    pub backends: Option<Vec<BackendChoice>>,
    pub events: u64,
    pub batch_rows: usize,
    pub runs: usize,
    pub out: PathBuf,
    /// The broker of the `kafka` workload.
    pub kafka: String,
    /// Worker process counts the `kafka` workload is also run with (scale-out).
    pub kafka_workers: Vec<usize>,
}

/// One (workload, backend) result.
#[derive(Debug, Clone, Serialize)]
struct Measurement {
    workload: Workload,
    backend: String,
    device: String,
    events: u64,
    /// Rows the job emitted (the same on every backend, or something is wrong).
    rows_out: u64,
    /// Events per second of each run.
    runs: Vec<f64>,
    /// The median run.
    events_per_second: f64,
    p50_batch_ms: f64,
    p99_batch_ms: f64,
    /// Events per second over the CPU backend's, same workload, same invocation.
    speedup_vs_cpu: Option<f64>,
    /// Why the workload could not run on this backend.
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    sluice_version: &'static str,
    unix_time: u64,
    host_cpu: String,
    host_threads: usize,
    events_per_run: u64,
    batch_rows: usize,
    runs: usize,
    /// The GPU's host-to-device copy rate (256 MiB out of a mapped staging buffer), bytes/s:
    /// what "end to end at least half the host-to-device bandwidth" is measured against.
    host_to_device_bytes_per_second: Option<f64>,
    /// The same with the staging buffer filled from host memory first, on every core.
    host_fill_and_copy_bytes_per_second: Option<f64>,
    results: Vec<Measurement>,
    /// The `checkpoint` workload: size and time of checkpointing 1 M keys, and of recovery.
    checkpoints: Vec<checkpoint::CheckpointMeasurement>,
    /// The `kafka` workload's topic and plain-consumer baseline.
    kafka: Option<kafka::KafkaReport>,
}

/// Runs the benchmark and writes its report.
pub fn bench(options: &BenchOptions) -> Result<ExitCode> {
    if options.runs == 0 || options.events == 0 || options.batch_rows == 0 {
        bail!("--runs, --events and --batch-rows must be positive");
    }
    let backends = open_backends(options.backends.as_deref())?;
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    eprintln!(
        "sluice bench: {} events per run, batches of {} rows, median of {} run(s)",
        options.events, options.batch_rows, options.runs
    );
    for backend in &backends {
        eprintln!("  backend {}", backend.describe());
    }
    let upload = if backends.iter().any(|b| b.name() == "gpu") {
        upload_rate()?
    } else {
        None
    };
    if let Some(rates) = upload {
        eprintln!(
            "  host-to-device: copy {:.1} GB/s, fill and copy {:.1} GB/s",
            rates.copy / 1e9,
            rates.fill_and_copy / 1e9
        );
    }
    let mut results = Vec::new();
    let mut checkpoints = Vec::new();
    let mut kafka_report = None;
    let checkpoint_folder = options.out.join("checkpoints");
    for &workload in &options.workloads {
        if workload == Workload::Checkpoint {
            for backend in &backends {
                eprintln!(
                    "  checkpoint of {} keys on {}",
                    checkpoint::KEYS,
                    backend.name()
                );
                match checkpoint::run(backend, options.runs, &checkpoint_folder) {
                    Ok(m) => checkpoints.push(m),
                    Err(e) => eprintln!("  checkpoint on {}: failed: {e:#}", backend.name()),
                }
            }
            continue;
        }
        let kafka_job = if workload == Workload::Kafka {
            let mut report = kafka::prepare(&options.kafka, options.events)?;
            report.consumer_runs = (0..options.runs)
                .map(|_| kafka::count_messages(&options.kafka, &report.topic, options.events))
                .collect::<Result<_>>()?;
            report.consumer_messages_per_second = median(&report.consumer_runs);
            for &workers in &options.kafka_workers {
                let runs = (0..options.runs)
                    .map(|_| {
                        scale_out::run(
                            &options.kafka,
                            &report.topic,
                            options.events,
                            workers,
                            options.batch_rows,
                            &options.out,
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                let rates: Vec<f64> = runs.iter().map(|r| r.messages_per_second).collect();
                let middle = median(&rates);
                if let Some(run) = runs.into_iter().find(|r| r.messages_per_second == middle) {
                    report.scale_out.push(run);
                }
            }
            let job = kafka::job(&options.kafka, &report.topic, options.batch_rows);
            kafka_report = Some(report);
            Some(job)
        } else {
            None
        };
        let job = JobFile::parse(
            &kafka_job.unwrap_or_else(|| {
                workload.job(
                    options.events,
                    options.batch_rows,
                    &checkpoint_folder.join("job").display().to_string(),
                )
            }),
            format!("bench-{}.toml", workload.name()).as_ref(),
            &[],
        )?;
        let mut cpu_rate = None;
        for backend in &backends {
            let summaries: Result<Vec<RunSummary>> = (0..options.runs)
                .map(|run| {
                    let what = format!(
                        "{} on {} (run {}/{})",
                        workload.name(),
                        backend.name(),
                        run + 1,
                        options.runs
                    );
                    // Each run starts fresh: a checkpoint left by the last would resume it.
                    let _ = std::fs::remove_dir_all(checkpoint_folder.join("job"));
                    if workload == Workload::Operator {
                        eprintln!("  {what}");
                        operator::run(backend, options.events, options.batch_rows)
                    } else {
                        run_once(&job, backend, options.events, &what)
                    }
                })
                .collect();
            let m = match summaries {
                Ok(summaries) => measure(workload, backend.as_ref(), &summaries),
                Err(e) => {
                    eprintln!("  {} on {}: failed: {e:#}", workload.name(), backend.name());
                    Measurement {
                        workload,
                        backend: backend.name().to_string(),
                        device: backend.describe(),
                        events: 0,
                        rows_out: 0,
                        runs: Vec::new(),
                        events_per_second: 0.0,
                        p50_batch_ms: 0.0,
                        p99_batch_ms: 0.0,
                        speedup_vs_cpu: None,
                        error: Some(format!("{e:#}")),
                    }
                }
            };
            if backend.name() == "cpu" {
                cpu_rate = Some(m.events_per_second);
            }
            let speedup = cpu_rate
                .filter(|_| m.error.is_none())
                .map(|c| m.events_per_second / c);
            results.push(Measurement {
                speedup_vs_cpu: speedup,
                ..m
            });
        }
    }
    print_table(&results);
    if let Some(k) = &kafka_report {
        println!(
            "kafka: plain rdkafka consumer {}/s on {} ({} messages, {} partitions); JSON decoding alone {}/s on one thread",
            human(k.consumer_messages_per_second),
            k.broker,
            k.messages,
            k.partitions,
            human(k.json_decoded_per_second_one_thread)
        );
        for m in results.iter().filter(|m| m.workload == Workload::Kafka) {
            println!(
                "kafka: sluice on {} at {:.0}% of the plain consumer",
                m.backend,
                100.0 * m.events_per_second / k.consumer_messages_per_second
            );
        }
        for r in &k.scale_out {
            println!(
                "kafka: {} worker process(es) {}/s ({:.2} s from the first partition read to the last exit)",
                r.workers,
                human(r.messages_per_second),
                r.seconds
            );
        }
    }
    for c in &checkpoints {
        println!(
            "checkpoint {} keys on {}: {:.1} MB, taken in {:.0} ms (state copied out in {:.0} ms), recovered in {:.0} ms",
            c.keys,
            c.backend,
            c.bytes as f64 / 1e6,
            c.checkpoint_ms,
            c.snapshot_ms,
            c.recovery_ms
        );
    }
    let report = Report {
        sluice_version: env!("CARGO_PKG_VERSION"),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        host_cpu: cpu_model(),
        host_threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        events_per_run: options.events,
        batch_rows: options.batch_rows,
        runs: options.runs,
        host_to_device_bytes_per_second: upload.map(|r| r.copy),
        host_fill_and_copy_bytes_per_second: upload.map(|r| r.fill_and_copy),
        results,
        checkpoints,
        kafka: kafka_report,
    };
    let json = options.out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let png = options.out.join("results.png");
    let bars: Vec<chart::Bar> = report
        .results
        .iter()
        .map(|m| chart::Bar {
            label: format!("{} / {}", m.workload.name(), m.backend),
            value: m.events_per_second,
            value_text: match &m.error {
                Some(_) => "failed (see results.json)".to_string(),
                None => format!("{}/s", human(m.events_per_second)),
            },
            gpu: m.backend == "gpu",
        })
        .collect();
    let mut notes = vec![format!(
        "host: {} ({} threads); {} events per run, batches of {} rows",
        report.host_cpu, report.host_threads, options.events, options.batch_rows
    )];
    for m in &report.results {
        let line = m.device.clone();
        if m.backend != "cpu" && !notes.contains(&line) {
            notes.push(line);
        }
    }
    chart::write(
        &png,
        &format!("sluice bench: events/s, median of {}", options.runs),
        &notes,
        &bars,
    )?;
    eprintln!("wrote {} and {}", json.display(), png.display());
    Ok(ExitCode::SUCCESS)
}

/// The GPU's host-to-device rates, measured through wgpu as batches are uploaded.
fn upload_rate() -> Result<Option<UploadRates>> {
    use sluice_engine::backend::GpuBackend;
    use sluice_engine::backend::gpu::AdapterChoice;
    let Some(gpu) = GpuBackend::open(AdapterChoice::Any)? else {
        return Ok(None);
    };
    Ok(Some(gpu.upload_rates(256 << 20, 8)?))
}

fn open_backends(choices: Option<&[BackendChoice]>) -> Result<Vec<Arc<dyn Backend>>> {
    let Some(choices) = choices else {
        let mut all = vec![BackendChoice::Cpu.open()?];
        let auto = BackendChoice::Auto.open()?;
        if auto.name() == "gpu" {
            all.push(auto);
        }
        return Ok(all);
    };
    choices
        .iter()
        .map(|c| c.open().map_err(anyhow::Error::from))
        .collect()
}

/// One run with a progress bar on a terminal.
fn run_once(
    job: &JobFile,
    backend: &Arc<dyn Backend>,
    events: u64,
    what: &str,
) -> Result<RunSummary> {
    let pipeline = job.pipeline_on(Arc::clone(backend))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let show = std::io::stderr().is_terminal();
    let summary = runtime.block_on(async {
        let metrics = Arc::new(Metrics::default());
        let reporter = show.then(|| {
            let metrics = metrics.clone();
            let what = what.to_string();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tick.tick().await;
                    let done = metrics.snapshot().events_in as f64 / events as f64;
                    let filled = (done.clamp(0.0, 1.0) * 30.0) as usize;
                    eprint!(
                        "\r\x1b[2K[{}{}] {:>3.0}%  {what}",
                        "#".repeat(filled),
                        ".".repeat(30 - filled),
                        done * 100.0
                    );
                }
            })
        });
        let result = pipeline.run(RunOptions::new(metrics)).await;
        if let Some(reporter) = reporter {
            reporter.abort();
            eprint!("\r\x1b[2K");
        }
        result
    })?;
    if !show {
        eprintln!("  {what}: {}/s", human(summary.events_per_second()));
    }
    Ok(summary)
}

fn measure(workload: Workload, backend: &dyn Backend, runs: &[RunSummary]) -> Measurement {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        runs[a]
            .events_per_second()
            .total_cmp(&runs[b].events_per_second())
    });
    let median = &runs[order[order.len() / 2]];
    Measurement {
        workload,
        backend: backend.name().to_string(),
        device: backend.describe(),
        events: median.counts.events_in,
        rows_out: median.counts.events_out,
        runs: runs.iter().map(RunSummary::events_per_second).collect(),
        events_per_second: median.events_per_second(),
        p50_batch_ms: median.latency.p50.as_secs_f64() * 1e3,
        p99_batch_ms: median.latency.p99.as_secs_f64() * 1e3,
        speedup_vs_cpu: None,
        error: None,
    }
}

fn print_table(results: &[Measurement]) {
    println!(
        "{:<14} {:<8} {:>12} {:>12} {:>12} {:>8}",
        "workload", "backend", "events/s", "p50 batch", "p99 batch", "vs cpu"
    );
    for m in results {
        if let Some(error) = &m.error {
            println!("{:<14} {:<8} failed: {error}", m.workload.name(), m.backend);
            continue;
        }
        println!(
            "{:<14} {:<8} {:>12} {:>9.1} ms {:>9.1} ms {:>8}",
            m.workload.name(),
            m.backend,
            human(m.events_per_second),
            m.p50_batch_ms,
            m.p99_batch_ms,
            m.speedup_vs_cpu
                .map(|s| format!("{s:.2}x"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    let devices: Vec<&str> = results.iter().map(|m| m.device.as_str()).collect();
    let mut seen = Vec::new();
    for d in devices {
        if !seen.contains(&d) {
            seen.push(d);
        }
    }
    for d in seen {
        println!("  {d}");
    }
}

/// The median of `values` (the upper one of an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn human(rate: f64) -> String {
    if rate >= 1e9 {
        format!("{:.2} G", rate / 1e9)
    } else if rate >= 1e6 {
        format!("{:.1} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
