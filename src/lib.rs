//! Sluice: Flink-class event-time stream processing over Arrow micro-batches.
//!
//! This crate reads job files (TOML) into the engine's [`Pipeline`](sluice_engine::pipeline::Pipeline)
//! builder and hosts the `sluice` command line. The engine lives in `sluice-engine`, sources and
//! sinks in `sluice-connectors`.
//!
//! ```no_run
//! let job = sluice::job::JobFile::load("examples/traffic.toml".as_ref(), &[]).expect("valid job");
//! let pipeline = job.pipeline(sluice::job::BackendChoice::Cpu).expect("builds");
//! let summary = pipeline.run_blocking().expect("runs");
//! println!("{} events in, {} rows out", summary.counts.events_in, summary.counts.events_out);
//! ```

pub mod bench_input;
pub mod dead_letters;
pub mod job;
pub mod kafka_bench_input;
pub mod sql;
pub mod worker;

pub use sluice_connectors as connectors;
pub use sluice_engine as engine;
