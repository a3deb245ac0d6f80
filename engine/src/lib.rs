//! The sluice engine: event-time stream processing over Arrow micro-batches.
//!
//! Roles, named once and used everywhere:
//! - a [`Source`](source::Source) produces Arrow batches per partition;
//! - an [`Operator`](operator::Operator) turns batches and watermarks into batches;
//! - a [`Backend`](backend::Backend) does the columnar window math (`CpuBackend` is the reference);
//! - a [`Sink`](sink::Sink) writes what comes out;
//! - a [`CheckpointStore`](checkpoint::CheckpointStore) remembers state in object storage;
//! - the [`runtime`] (tokio) wires them, cuts micro-batches and tracks watermarks; it runs a
//!   [`JobPlan`](plan::JobPlan), which a [`Pipeline`](pipeline::Pipeline) builder validated.
//!
//! ```no_run
//! use sluice_engine::prelude::*;
//! # fn demo(source: Box<dyn Source>, sink: Box<dyn Sink>) -> sluice_engine::Result<()> {
//! let window = WindowAggregateSpec {
//!     keys: vec!["card_id".into()],
//!     window: WindowSpec::Tumbling { size: 1_000, offset: 0 },
//!     aggregates: vec![AggregateSpec::count("n")],
//! };
//! let pipeline = Pipeline::builder(source, EventTimeSpec::new("ts", 2_000))
//!     .window(window)
//!     .sink(sink)
//!     .build()?;
//! let summary = pipeline.run_blocking()?;
//! println!("{} events in", summary.counts.events_in);
//! # Ok(()) }
//! ```

pub mod aggregate;
pub mod backend;
pub mod batching;
pub mod checkpoint;
pub mod dialect;
pub mod duration;
pub mod error;
pub mod event_time;
pub mod expr;
pub mod frame;
pub mod keys;
pub mod memory;
pub mod metrics;
pub mod operator;
pub mod pipeline;
pub mod plan;
pub mod prelude;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod state;
pub mod watermark;
pub mod window;

pub use error::{Error, Result};
