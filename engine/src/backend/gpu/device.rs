//! GPU adapters: listing them, choosing one (`auto` takes hardware only), opening a device
//! that reports its errors instead of panicking.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// Which adapter a job may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterChoice {
    /// A hardware GPU (discrete, integrated or virtual), or none.
    Hardware,
    /// Any adapter that can run the kernels, hardware first, then software (lavapipe).
    Any,
}

/// What `sluice devices` shows about one adapter.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it.
    pub name: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: String,
    /// The graphics API wgpu drives it through (Vulkan, Metal, Dx12, Gl).
    pub api: String,
    /// Driver name and version.
    pub driver: String,
    /// Whether it is a hardware GPU (`auto` considers only these).
    pub hardware: bool,
    /// Lower is preferred: discrete, integrated, virtual, then software.
    pub preference: u8,
    /// `None` when sluice can run on it, else why not.
    pub unusable: Option<String>,
    /// Largest storage buffer binding, bytes (bounds rows per dispatch and table size).
    pub max_storage_binding: u64,
    /// Largest buffer, bytes.
    pub max_buffer: u64,
    /// Storage buffers one shader may bind.
    pub max_storage_buffers: u32,
    /// Workgroups per dispatch dimension.
    pub max_workgroups_per_dimension: u32,
    /// Optional features worth knowing about (64-bit integers and atomics, f64, subgroups).
    pub features: Vec<&'static str>,
}

impl AdapterSummary {
    /// Whether `choice` may take this adapter.
    pub fn eligible(&self, choice: AdapterChoice) -> bool {
        self.unusable.is_none() && (self.hardware || choice == AdapterChoice::Any)
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.device_type, self.api)
    }
}

/// Storage buffers the widest kernel (`window_fire`) binds.
const STORAGE_BUFFERS_NEEDED: u32 = 7;

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn summarize(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    let features = adapter.features();
    let hardware = matches!(
        info.device_type,
        wgpu::DeviceType::DiscreteGpu
            | wgpu::DeviceType::IntegratedGpu
            | wgpu::DeviceType::VirtualGpu
    );
    let compute = adapter
        .get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
    let unusable = if !compute {
        Some("no compute shaders".to_string())
    } else if limits.max_storage_buffers_per_shader_stage < STORAGE_BUFFERS_NEEDED {
        Some(format!(
            "binds {} storage buffers per shader, sluice needs {STORAGE_BUFFERS_NEEDED}",
            limits.max_storage_buffers_per_shader_stage
        ))
    } else if info.backend == wgpu::Backend::Gl {
        Some("OpenGL adapters are not used (prefer Vulkan, Metal or DX12)".to_string())
    } else {
        None
    };
    let named = [
        (wgpu::Features::SHADER_INT64, "shader-int64"),
        (
            wgpu::Features::SHADER_INT64_ATOMIC_MIN_MAX,
            "int64-atomic-min-max",
        ),
        (
            wgpu::Features::SHADER_INT64_ATOMIC_ALL_OPS,
            "int64-atomic-all",
        ),
        (wgpu::Features::SHADER_F64, "shader-f64"),
        (wgpu::Features::SUBGROUP, "subgroups"),
        (wgpu::Features::TIMESTAMP_QUERY, "timestamp-query"),
    ];
    AdapterSummary {
        name: info.name.clone(),
        device_type: format!("{:?}", info.device_type),
        api: format!("{:?}", info.backend),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
        hardware,
        preference: match info.device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Cpu => 3,
            wgpu::DeviceType::Other => 4,
        },
        unusable,
        max_storage_binding: limits.max_storage_buffer_binding_size,
        max_buffer: limits.max_buffer_size,
        max_storage_buffers: limits.max_storage_buffers_per_shader_stage,
        max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        features: named
            .iter()
            .filter(|(f, _)| features.contains(*f))
            .map(|(_, name)| *name)
            .collect(),
    }
}

/// Every adapter wgpu can see (set `WGPU_BACKEND=vulkan` etc. to narrow), usable or not.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
    adapters.iter().map(summarize).collect()
}

/// The adapter `choice` takes, with its summary: hardware before software, discrete before
/// integrated, Vulkan/Metal/DX12 only.
fn pick(choice: AdapterChoice) -> Option<(wgpu::Adapter, AdapterSummary)> {
    let adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
    adapters
        .into_iter()
        .map(|a| {
            let s = summarize(&a);
            (a, s)
        })
        .filter(|(_, s)| s.eligible(choice))
        .min_by_key(|(_, s)| s.preference)
}

/// An open device, its queue, and the errors it reported asynchronously.
#[derive(Debug)]
pub struct GpuDevice {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    /// Whether the device has 64-bit integers and atomics (`window_update64` can run).
    pub(crate) int64_atomics: bool,
    /// Whether the device can write GPU timestamps (used only when profiling).
    pub(crate) timestamps: bool,
    summary: AdapterSummary,
    errors: Arc<Mutex<Vec<String>>>,
}

impl GpuDevice {
    /// Opens the adapter `choice` takes; `Ok(None)` when there is none.
    pub fn open(choice: AdapterChoice) -> Result<Option<Self>> {
        let Some((adapter, summary)) = pick(choice) else {
            return Ok(None);
        };
        let limits = adapter.limits();
        let int64 = wgpu::Features::SHADER_INT64
            | wgpu::Features::SHADER_INT64_ATOMIC_ALL_OPS
            | wgpu::Features::SHADER_INT64_ATOMIC_MIN_MAX;
        let int64_atomics = adapter.features().contains(int64);
        let mut required_features = if int64_atomics {
            int64
        } else {
            wgpu::Features::empty()
        };
        // Timestamps time the GPU side of rounds under SLUICE_GPU_PROFILE; nothing else uses them.
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        if timestamps {
            required_features |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("sluice"),
            required_features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("cannot open {summary}: {e}")))?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut errors) = sink.lock() {
                errors.push(e.to_string());
            }
        }));
        let sink = Arc::clone(&errors);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut errors) = sink.lock() {
                let detail = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                };
                errors.push(format!(
                    "device lost ({reason:?}){detail}; the job stops without emitting its open \
                     windows (run it again, or with --backend cpu)"
                ));
            }
        });
        Ok(Some(GpuDevice {
            device,
            queue,
            limits,
            int64_atomics,
            timestamps,
            summary,
            errors,
        }))
    }

    /// The adapter this device runs on.
    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    /// Fails with every error the device reported since the last check.
    pub(crate) fn check(&self) -> Result<()> {
        let errors = self
            .errors
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Gpu(format!(
                "{}: {}",
                self.summary,
                errors.join("; ")
            )))
        }
    }

    /// Blocks until every submission has run (and its map callbacks fired), then reports
    /// device errors.
    pub(crate) fn wait_idle(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("{}: {e}", self.summary)))?;
        self.check()
    }

    /// Blocks until `submission` has run, then reports device errors.
    pub(crate) fn wait(&self, submission: wgpu::SubmissionIndex) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("{}: {e}", self.summary)))?;
        self.check()
    }
}
