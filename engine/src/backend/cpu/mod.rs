//! The reference backend: window state in columnar hash tables, partitioned by key hash across
//! Rayon threads so no lock is shared and each thread owns its keys.

mod accumulators;
mod join_buffer;
mod lookup_join;
mod over_aggregate;
mod partition;
mod session_window;
mod state;
mod window_aggregate;

use std::sync::Arc;

pub use accumulators::Accumulators;
pub use join_buffer::CpuJoinBuffer;
pub use lookup_join::CpuLookupIndex;
pub use over_aggregate::CpuOverAggregator;
pub use session_window::CpuSessionAggregator;
pub use window_aggregate::CpuWindowAggregator;

use crate::backend::{
    Backend, JoinBuffer, OverAggregatePlan, OverAggregator, WindowAggregatePlan, WindowAggregator,
};
use crate::error::{Error, Result};
use crate::window::WindowSpec;

/// Window aggregation on the CPU with Rayon.
#[derive(Debug, Clone)]
pub struct CpuBackend {
    partitions: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl CpuBackend {
    /// Partitions state across all of Rayon's global threads.
    pub fn new() -> Self {
        CpuBackend {
            partitions: rayon::current_num_threads().max(1),
            pool: None,
        }
    }

    /// Uses exactly `threads` threads (and as many state partitions), in a pool of its own.
    pub fn with_threads(threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("sluice-cpu-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the CPU thread pool: {e}")))?;
        Ok(CpuBackend {
            partitions: threads,
            pool: Some(Arc::new(pool)),
        })
    }

    /// The number of state partitions (one per thread).
    pub fn partitions(&self) -> usize {
        self.partitions
    }
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn window_aggregator(&self, plan: &WindowAggregatePlan) -> Result<Box<dyn WindowAggregator>> {
        plan.window.validate("window")?;
        plan.window.sliced()?;
        Ok(match plan.window {
            WindowSpec::Session { .. } => Box::new(CpuSessionAggregator::new(
                plan.clone(),
                self.partitions,
                self.pool.clone(),
            )),
            _ => Box::new(CpuWindowAggregator::new(
                plan.clone(),
                self.partitions,
                self.pool.clone(),
            )),
        })
    }

    fn join_buffer(&self, granularity: i64) -> Result<Box<dyn JoinBuffer>> {
        Ok(Box::new(CpuJoinBuffer::new(granularity, self.pool.clone())))
    }

    fn over_aggregator(&self, plan: &OverAggregatePlan) -> Result<Box<dyn OverAggregator>> {
        Ok(Box::new(
            CpuOverAggregator::new(plan.clone()).with_pool(self.pool.clone()),
        ))
    }
}

/// Runs `f` in the backend's own pool if it has one, else in Rayon's global pool.
fn in_pool<R: Send>(pool: &Option<Arc<rayon::ThreadPool>>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}
