//! Compute pipelines and bind-group layouts for every kernel, built once per device, and the
//! `Pass` parameter block they share (mirrors `struct Pass` in `shaders/common.wgsl`).

use super::shaders::Kernel;

/// Parameters of one dispatch; field order and size match `struct Pass` in WGSL.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PassParams {
    pub rows: u32,
    pub items: u32,
    pub per_row: u32,
    pub uneven: u32,
    pub mask: u32,
    pub limit: u32,
    pub dmask: u32,
    pub dlimit: u32,
    pub tag: u32,
    pub first: u32,
    pub last: u32,
    pub hash_mode: u32,
    pub min_open_lo: u32,
    pub min_open_hi: u32,
    pub stride: u32,
    pub n_aggs: u32,
    pub keys_at: u32,
    pub wins_at: u32,
    pub counts_at: u32,
    pub new_mask: u32,
    pub close: u32,
    pub identity: u32,
    /// Bit 0: key ids uploaded as 32-bit words; bit 1: window indices as 32-bit offsets from
    /// `wbase` (`Narrow` in `window_aggregate`).
    pub narrow: u32,
    pub wbase_lo: u32,
    pub wbase_hi: u32,
    /// Session windows: the gap, and the accumulator word of a bucket's min event time.
    pub gap_lo: u32,
    pub gap_hi: u32,
    pub ts_at: u32,
}

/// One aggregate's descriptor (`struct AggDesc` in WGSL).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct AggDesc {
    pub op: u32,
    pub values_at: u32,
    pub valid_at: u32,
    pub acc_at: u32,
    /// 1 when the column is uploaded as 32-bit signed integers.
    pub narrow: u32,
}

/// Workgroup size of every kernel (`WG` in `shaders/common.wgsl`).
pub(crate) const WORKGROUP: u32 = 256;

#[derive(Debug, Clone, Copy)]
enum Binding {
    /// The `Pass` block, at a dynamic offset so one buffer holds a round's passes.
    Params,
    Read,
    ReadWrite,
}

fn bindings(kernel: Kernel) -> &'static [Binding] {
    use Binding::{Params as P, Read as R, ReadWrite as W};
    match kernel {
        Kernel::WindowAssign => &[P, R, W, W, W, W, R],
        Kernel::WindowUpdate | Kernel::WindowUpdate64 => &[P, R, W, W, W, R],
        Kernel::WindowMinMaxLo => &[P, R, W, W, R],
        Kernel::DistinctInsert => &[P, R, W, W, W, R, W],
        Kernel::WindowFire => &[P, R, R, W, W, W, W, W],
        Kernel::DistinctRebuild => &[P, R, W, R, W],
        Kernel::ItemRemap => &[P, W, R],
        Kernel::TableSettle => &[P, W],
        Kernel::SessionLate => &[P, R, R, R, W, W, R, W],
        Kernel::SessionFire => &[P, R, R, W, W, W, R, W],
        Kernel::SessionDistinct => &[P, R, R, R, R, W, R],
        Kernel::LookupBuild => &[P, R, W],
        Kernel::LookupProbe => &[P, R, R, W],
        Kernel::JoinBufferInsert => &[P, R, R, W, W],
        Kernel::JoinBufferLink => &[P, R, R, W, W, W],
        Kernel::JoinBufferProbe => &[P, R, R, R, W, W, W],
        Kernel::JoinBufferExpire => &[P, W, W, W, W],
        Kernel::JoinBufferRehash => &[P, R, W, W],
    }
}

/// Every kernel's pipeline and layout.
#[derive(Debug)]
pub(crate) struct Kernels {
    /// One per kernel, in `Kernel::ALL` order; `None` for a kernel the device cannot run.
    pipelines: Vec<Option<wgpu::ComputePipeline>>,
    layouts: Vec<wgpu::BindGroupLayout>,
    /// Bytes between two `Pass` blocks in the parameter buffer.
    pub params_stride: u64,
}

impl Kernels {
    /// Builds every kernel the device can run (`int64_atomics`: the 64-bit atomics ones too).
    pub(crate) fn new(device: &wgpu::Device, limits: &wgpu::Limits, int64_atomics: bool) -> Self {
        let size = std::mem::size_of::<PassParams>() as u64;
        let align = u64::from(limits.min_uniform_buffer_offset_alignment.max(1));
        let params_stride = size.div_ceil(align) * align;
        let mut pipelines = Vec::new();
        let mut layouts = Vec::new();
        for kernel in Kernel::ALL {
            let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings(kernel)
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                    binding: i as u32,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: match b {
                        Binding::Params => wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Uniform,
                            has_dynamic_offset: true,
                            min_binding_size: wgpu::BufferSize::new(size),
                        },
                        Binding::Read | Binding::ReadWrite => wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage {
                                read_only: matches!(b, Binding::Read),
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                    },
                    count: None,
                })
                .collect();
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.file()),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.file()),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            if kernel.needs_int64_atomics() && !int64_atomics {
                pipelines.push(None);
                layouts.push(layout);
                continue;
            }
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.file()),
                source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
            });
            pipelines.push(Some(device.create_compute_pipeline(
                &wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.file()),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                },
            )));
            layouts.push(layout);
        }
        Kernels {
            pipelines,
            layouts,
            params_stride,
        }
    }

    fn index(kernel: Kernel) -> usize {
        Kernel::ALL
            .iter()
            .position(|k| *k == kernel)
            .unwrap_or_default()
    }

    /// The kernel's pipeline; `None` when the device cannot run it.
    pub(crate) fn pipeline(&self, kernel: Kernel) -> Option<&wgpu::ComputePipeline> {
        self.pipelines[Self::index(kernel)].as_ref()
    }

    /// A bind group for `kernel`: `params` first, then the storage buffers in binding order.
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        kernel: Kernel,
        params: &wgpu::Buffer,
        storage: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let size = std::mem::size_of::<PassParams>() as u64;
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: params,
                offset: 0,
                size: wgpu::BufferSize::new(size),
            }),
        }];
        entries.extend(
            storage
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: b.as_entire_binding(),
                }),
        );
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.file()),
            layout: &self.layouts[Self::index(kernel)],
            entries: &entries,
        })
    }
}

/// Workgroup counts covering `invocations` in a 2-D grid (x capped by the device limit).
pub(crate) fn grid(invocations: u32, max_per_dimension: u32) -> (u32, u32) {
    let groups = invocations.div_ceil(WORKGROUP).max(1);
    let x = groups.min(max_per_dimension.max(1));
    (x, groups.div_ceil(x))
}
