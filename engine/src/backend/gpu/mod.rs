//! The wgpu backend: window state in GPU storage buffers, updated by the WGSL passes in
//! `shaders/`, read back only when windows close. It must agree with [`CpuBackend`], the
//! reference.
//!
//! [`CpuBackend`]: crate::backend::CpuBackend

mod buffers;
mod device;
mod fixed_point;
mod join_buffer;
mod kernels;
mod lookup_join;
mod plan;
mod shaders;
mod upload;
mod window_aggregate;
mod window_index;

use std::sync::Arc;

pub use device::{AdapterChoice, AdapterSummary, GpuDevice, list_adapters};
pub use shaders::Kernel;
pub use window_aggregate::GpuWindowAggregator;

use crate::backend::{Backend, WindowAggregatePlan, WindowAggregator};
use crate::error::Result;

/// A device and the pipelines built on it, shared by every operator of a job.
#[derive(Debug)]
pub struct GpuContext {
    device: GpuDevice,
    kernels: kernels::Kernels,
}

/// Window aggregation on a GPU through wgpu.
#[derive(Debug, Clone)]
pub struct GpuBackend {
    context: Arc<GpuContext>,
    tuning: Tuning,
}

/// Knobs tests use to force rare paths; the defaults are what jobs run with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// 1 makes every key hash alike.
    pub hash_mode: u32,
    /// Most rows uploaded per round (the device's binding limit caps it too).
    pub max_chunk_rows: usize,
    /// Use the 32-bit emulation even where 64-bit atomics exist.
    pub emulate_int64: bool,
    /// Most bytes of closed rows a fire reads with its counters in one round trip.
    pub eager_read_bytes: u64,
}

impl GpuBackend {
    /// Opens the adapter `choice` takes and builds every pipeline; `Ok(None)` when there is
    /// no such adapter.
    pub fn open(choice: AdapterChoice) -> Result<Option<Self>> {
        let Some(device) = GpuDevice::open(choice)? else {
            return Ok(None);
        };
        let kernels = kernels::Kernels::new(&device.device, &device.limits, device.int64_atomics);
        device.check()?;
        Ok(Some(GpuBackend {
            context: Arc::new(GpuContext { device, kernels }),
            tuning: Tuning {
                hash_mode: 0,
                max_chunk_rows: usize::MAX,
                emulate_int64: false,
                eager_read_bytes: 16 << 20,
            },
        }))
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        self.context.device.summary()
    }

    /// Makes every key hash to the same slot and fingerprint: the worst case of collision
    /// handling, for tests. Results must not change, only speed.
    #[doc(hidden)]
    pub fn with_colliding_hashes(mut self) -> Self {
        self.tuning.hash_mode = 1;
        self
    }

    /// Uses the exact 32-bit emulation of 64-bit counts, sums and min/max even where the
    /// adapter has 64-bit atomics (tests run both paths).
    #[doc(hidden)]
    pub fn with_emulated_int64(mut self) -> Self {
        self.tuning.emulate_int64 = true;
        self
    }

    /// Reads closed rows in a second round trip after the fire's counters, always (the path
    /// fires take when their rows are too many to read eagerly).
    #[doc(hidden)]
    pub fn with_two_trip_reads(mut self) -> Self {
        self.tuning.eager_read_bytes = 0;
        self
    }

    /// Whether updates use the adapter's native 64-bit atomics.
    pub fn native_int64_atomics(&self) -> bool {
        self.context.device.int64_atomics && !self.tuning.emulate_int64
    }

    /// Cuts every micro-batch into rounds of at most `rows` rows (tests of the chunked path).
    #[doc(hidden)]
    pub fn with_chunk_rows(mut self, rows: usize) -> Self {
        self.tuning.max_chunk_rows = rows.max(1);
        self
    }
}

impl GpuBackend {
    /// Host-to-device rates through the path micro-batches take: a mapped staging buffer
    /// filled on every core, then copied into a storage buffer by a submit that is waited
    /// for. `bytes` are moved `times` times after one untimed warm-up.
    pub fn upload_rates(&self, bytes: u64, times: u32) -> Result<UploadRates> {
        use std::time::{Duration, Instant};
        let device = &self.context.device;
        let bytes = bytes
            .min(device.limits.max_storage_buffer_binding_size)
            .max(4)
            & !3;
        let target = buffers::storage(device, "upload probe", bytes);
        let staging = upload::Staging::new(device, bytes);
        let host = vec![0x5au8; bytes as usize];
        let (mut copying, mut total) = (Duration::ZERO, Duration::ZERO);
        for time in 0..=times {
            let begin = Instant::now();
            staging.fill(device, bytes, |mapped| upload::parallel_copy(mapped, &host))?;
            staging.release();
            let filled = Instant::now();
            let mut encoder = device
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            encoder.copy_buffer_to_buffer(staging.buffer(), 0, &target, 0, bytes);
            let submission = device.queue.submit([encoder.finish()]);
            staging.remap();
            device.wait(submission)?;
            if time > 0 {
                copying += filled.elapsed();
                total += begin.elapsed();
            }
        }
        let rate = |d: Duration| (bytes * u64::from(times)) as f64 / d.as_secs_f64().max(1e-9);
        Ok(UploadRates {
            copy: rate(copying),
            fill_and_copy: rate(total),
        })
    }
}

/// Host-to-device rates in bytes per second (see [`GpuBackend::upload_rates`]).
#[derive(Debug, Clone, Copy)]
pub struct UploadRates {
    /// The device's copy out of a filled staging buffer: the bus as wgpu reaches it.
    pub copy: f64,
    /// Filling the staging buffer from host memory on every core, then that copy.
    pub fill_and_copy: f64,
}

impl Backend for GpuBackend {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn window_aggregator(&self, plan: &WindowAggregatePlan) -> Result<Box<dyn WindowAggregator>> {
        plan.window.validate("window")?;
        plan.window.sliced()?;
        Ok(Box::new(GpuWindowAggregator::new(
            Arc::clone(&self.context),
            plan.clone(),
            self.tuning,
        )?))
    }

    fn describe(&self) -> String {
        format!("gpu: {}", self.adapter())
    }

    fn placement(&self, _plan: &WindowAggregatePlan) -> String {
        self.describe()
    }

    fn lookup_index(
        &self,
        ids: &[u64],
        valid: &[bool],
    ) -> Result<Box<dyn crate::backend::LookupIndex>> {
        Ok(Box::new(lookup_join::GpuLookupIndex::build(
            Arc::clone(&self.context),
            self.tuning,
            ids,
            valid,
        )?))
    }

    fn lookup_placement(&self) -> String {
        self.describe()
    }

    fn join_buffer(&self, granularity: i64) -> Result<Box<dyn crate::backend::JoinBuffer>> {
        // Rows are chained per key, not bucketed by time: the granularity hint has no use.
        let _ = granularity;
        Ok(Box::new(join_buffer::GpuJoinBuffer::new(
            Arc::clone(&self.context),
            self.tuning,
        )))
    }

    fn join_placement(&self) -> String {
        self.describe()
    }

    fn over_placement(&self) -> String {
        // The default `over_aggregator` (the CPU's) runs OVER frames on this backend too.
        "cpu (OVER aggregation has no GPU kernel yet)".to_string()
    }
}

impl GpuBackend {
    /// For tests: any adapter, lavapipe included. Without one, `None` after printing why,
    /// unless `REQUIRE_GPU=1`, which makes a missing adapter a failure (CI sets it).
    #[doc(hidden)]
    pub fn for_tests() -> Option<GpuBackend> {
        let required = std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1");
        match GpuBackend::open(AdapterChoice::Any) {
            Ok(Some(backend)) => Some(backend),
            Ok(None) if !required => {
                eprintln!(
                    "skipping GPU test: no GPU adapter (install mesa-vulkan-drivers for the \
                     lavapipe software adapter; REQUIRE_GPU=1 turns this into a failure)"
                );
                None
            }
            Ok(None) => panic!("REQUIRE_GPU=1 but wgpu found no usable adapter"),
            Err(e) if !required => {
                eprintln!("skipping GPU test: {e}");
                None
            }
            Err(e) => panic!("REQUIRE_GPU=1 but the GPU failed to open: {e}"),
        }
    }
}

#[cfg(test)]
mod parity_tests;
