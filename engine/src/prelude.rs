//! What most users of the engine import.

pub use crate::aggregate::{AggregateFunction, AggregateSpec};
#[cfg(feature = "gpu")]
pub use crate::backend::GpuBackend;
pub use crate::backend::{Backend, CpuBackend};
pub use crate::batching::BatchingSpec;
pub use crate::duration::DurationMs;
pub use crate::error::{Error, Result};
pub use crate::event_time::EventTimeSpec;
pub use crate::expr::Expr;
pub use crate::metrics::{Metrics, MetricsSnapshot, RunSummary};
pub use crate::operator::{
    JoinKind, JoinTime, StreamJoinSpec, TopNOrder, WindowAggregateSpec, WindowTopNSpec,
};
pub use crate::pipeline::{InputStream, OperatorSpec, Pipeline, PipelineBuilder, PipelineSchemas};
pub use crate::runtime::RunOptions;
pub use crate::sink::Sink;
pub use crate::source::{
    DeadLetter, Location, Position, Source, SourceBatch, SourceContext, SourcePartition,
};
pub use crate::window::WindowSpec;
