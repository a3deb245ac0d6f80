//! Rounds: one submit of every pass over a micro-batch's items, and waiting for a round's
//! status before its buffers are reused (more rounds for leftovers, growing full tables).

use super::rebuild::grow_after_full;
use super::*;
use crate::backend::gpu::upload::Staging;

/// The buffers of one in-flight micro-batch.
#[derive(Debug)]
pub(super) struct BatchSlot {
    pub(super) batch: wgpu::Buffer,
    /// Mapped host-visible buffer the batch is written into, then copied to `batch`.
    pub(super) upload: Staging,
    /// Bytes the next first round copies from `upload` into `batch`.
    pub(super) copy_bytes: u64,
    pub(super) item_slot: wgpu::Buffer,
    pub(super) aggs: wgpu::Buffer,
    pub(super) status: wgpu::Buffer,
    pub(super) rows: u32,
    pub(super) items: u32,
    pub(super) keys_at: u32,
    pub(super) wins_at: u32,
    pub(super) counts_at: u32,
    /// `PassParams::narrow` bits of the batch's layout.
    pub(super) narrow: u32,
    /// The window narrow window offsets count from.
    pub(super) wbase: i64,
    /// The first open window when the batch arrived: its retried items are judged by it,
    /// since the windows a later watermark closes must still receive them.
    pub(super) first_open: i64,
    /// A submitted round whose counters are still being mapped.
    pub(super) pending: Option<PendingRead>,
    /// Items that may still reference table slots (a growth must remap them).
    pub(super) live: bool,
    /// `tables_generation` when the pending round was submitted.
    pub(super) generation: u64,
    /// Whether the pending round wrote GPU timestamps into its status.
    pub(super) timed: bool,
}

impl BatchSlot {
    pub(super) fn new(ctx: &GpuContext, aggregates: usize) -> Self {
        BatchSlot {
            batch: storage(&ctx.device, "batch", 16),
            upload: Staging::new(&ctx.device, 16),
            copy_bytes: 0,
            item_slot: storage(&ctx.device, "item slots", 16),
            aggs: storage(
                &ctx.device,
                "aggregates",
                (aggregates.max(1) * std::mem::size_of::<AggDesc>()) as u64,
            ),
            status: staging(&ctx.device, "status", STATUS_BYTES),
            rows: 0,
            items: 0,
            keys_at: 0,
            wins_at: 0,
            counts_at: 0,
            narrow: 0,
            wbase: 0,
            first_open: i64::MIN,
            pending: None,
            generation: 0,
            timed: false,
            live: false,
        }
    }
}

/// What a round's counters said.
#[derive(Debug, Clone, Copy)]
struct Status {
    occupied: u32,
    unresolved: u32,
    full: bool,
    doccupied: u32,
    dfull: bool,
    range: bool,
}

impl Status {
    fn from_words(w: &[u32]) -> Self {
        Status {
            occupied: w[C_OCCUPIED],
            unresolved: w[C_UNRESOLVED],
            full: w[C_FULL] != 0,
            doccupied: w[C_DOCCUPIED],
            dfull: w[C_DFULL] != 0,
            range: w[C_RANGE] != 0,
        }
    }
}

impl GpuWindowAggregator {
    fn next_tag(&mut self) -> u32 {
        self.tag += 1;
        self.tag
    }
    /// Submits one round of passes over slot `s`'s items and starts mapping its counters.
    pub(super) fn round(&mut self, s: usize, first: bool) {
        let tags = ASSIGN_PASSES
            + if self.distinct.is_some() {
                DISTINCT_PASSES
            } else {
                0
            };
        let settle = self.tag as usize + tags > LAST_TAG as usize;
        if settle {
            self.tag = 1;
            self.write_params(
                SETTLE_BLOCK,
                &PassParams {
                    items: self.groups.keys.capacity,
                    ..self.base_params()
                },
            );
            if let Some(d) = &self.distinct {
                self.write_params(
                    SETTLE_BLOCK + 1,
                    &PassParams {
                        items: d.capacity,
                        ..self.base_params()
                    },
                );
            }
        }
        let mut blocks = Vec::new();
        let slot = &self.slots[s];
        let base = PassParams {
            rows: slot.rows,
            items: slot.items,
            per_row: self.index.per_row,
            uneven: u32::from(self.index.varying),
            keys_at: slot.keys_at,
            wins_at: slot.wins_at,
            counts_at: slot.counts_at,
            narrow: slot.narrow,
            wbase_lo: slot.wbase as u64 as u32,
            wbase_hi: ((slot.wbase as u64) >> 32) as u32,
            min_open_lo: slot.first_open as u64 as u32,
            min_open_hi: ((slot.first_open as u64) >> 32) as u32,
            ..self.base_params()
        };
        let mut kernels = Vec::new();
        for i in 0..ASSIGN_PASSES {
            let tag = self.next_tag();
            blocks.push(PassParams {
                tag,
                first: u32::from(first && i == 0),
                last: u32::from(i + 1 == ASSIGN_PASSES),
                ..base
            });
            kernels.push(Kernel::WindowAssign);
        }
        // Native 64-bit atomics fold min/max whole, so the low-word pass is not needed.
        let native = self.gpu.device.int64_atomics && !self.tuning.emulate_int64;
        blocks.push(base);
        kernels.push(if native {
            Kernel::WindowUpdate64
        } else {
            Kernel::WindowUpdate
        });
        blocks.push(base);
        kernels.push(Kernel::WindowMinMaxLo);
        if self.distinct.is_some() {
            for i in 0..DISTINCT_PASSES {
                let tag = self.next_tag();
                blocks.push(PassParams {
                    tag,
                    last: u32::from(i + 1 == DISTINCT_PASSES),
                    ..base
                });
                kernels.push(Kernel::DistinctInsert);
            }
        }
        for (i, block) in blocks.iter().enumerate() {
            self.write_params(i as u64, block);
        }
        // The round reports only its own leftovers and fullness.
        self.reset_counters(C_UNRESOLVED, 2);
        self.reset_counters(C_DFULL, 1);

        let slot = &self.slots[s];
        let mut encoder = self.encoder("window round");
        let upload = first && slot.copy_bytes > 0;
        if upload {
            encoder.copy_buffer_to_buffer(slot.upload.buffer(), 0, &slot.batch, 0, slot.copy_bytes);
        }
        let timed = self.timestamps.as_ref().filter(|_| first);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("window round"),
                timestamp_writes: timed.map(|(set, _)| wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: Some(2 * s as u32),
                    end_of_pass_write_index: Some(2 * s as u32 + 1),
                }),
            });
            let g = &self.groups;
            if settle {
                self.dispatch(
                    &mut pass,
                    Kernel::TableSettle,
                    SETTLE_BLOCK,
                    &[&g.keys.buffer],
                    g.keys.capacity,
                );
                if let Some(d) = &self.distinct {
                    self.dispatch(
                        &mut pass,
                        Kernel::TableSettle,
                        SETTLE_BLOCK + 1,
                        &[&d.buffer],
                        d.capacity,
                    );
                }
            }
            for (i, kernel) in kernels.iter().enumerate() {
                let buffers: Vec<&wgpu::Buffer> = match kernel {
                    Kernel::WindowAssign => vec![
                        &slot.batch,
                        &g.keys.buffer,
                        &g.acc,
                        &slot.item_slot,
                        &self.counters,
                        &slot.aggs,
                    ],
                    Kernel::WindowUpdate | Kernel::WindowUpdate64 => {
                        vec![
                            &slot.batch,
                            &g.acc,
                            &slot.item_slot,
                            &self.counters,
                            &slot.aggs,
                        ]
                    }
                    Kernel::WindowMinMaxLo => {
                        vec![&slot.batch, &g.acc, &slot.item_slot, &slot.aggs]
                    }
                    _ => match &self.distinct {
                        Some(d) => vec![
                            &slot.batch,
                            &g.acc,
                            &slot.item_slot,
                            &self.counters,
                            &slot.aggs,
                            &d.buffer,
                        ],
                        None => continue,
                    },
                };
                if *kernel == Kernel::WindowMinMaxLo && (native || !self.layout.has_min_max()) {
                    continue;
                }
                self.dispatch(&mut pass, *kernel, i as u64, &buffers, slot.items);
            }
        }
        encoder.copy_buffer_to_buffer(&self.counters, 0, &slot.status, 0, COUNTERS * 4);
        if let Some((set, resolve)) = timed {
            let at = s as u64 * TIMESTAMP_STRIDE;
            encoder.resolve_query_set(set, 2 * s as u32..2 * s as u32 + 2, resolve, at);
            encoder.copy_buffer_to_buffer(resolve, at, &slot.status, COUNTERS * 4, 16);
        }
        let begin = Instant::now();
        let submission = self.device().queue.submit([encoder.finish()]);
        if first {
            profile::add(&mut self.profile, begin, |p| &mut p.queue);
        }
        let slot = &self.slots[s];
        if upload {
            slot.upload.remap();
        }
        let pending = PendingRead::start(&slot.status, STATUS_BYTES, submission);
        self.slots[s].pending = Some(pending);
        self.slots[s].timed = timed.is_some();
        self.slots[s].copy_bytes = 0;
        self.slots[s].generation = self.tables_generation;
    }

    /// Waits for slot `s`'s rounds until every item is applied (growing tables as needed).
    pub(super) fn drain(&mut self, s: usize) -> Result<()> {
        let mut rounds = 0;
        while let Some(pending) = self.slots[s].pending.take() {
            let words = pending.finish(self.device(), &self.slots[s].status)?;
            let status = Status::from_words(&words);
            if std::mem::take(&mut self.slots[s].timed) {
                let tick = |i: usize| u64::from(words[i]) | (u64::from(words[i + 1]) << 32);
                let ticks = tick(10).saturating_sub(tick(8));
                let period = f64::from(self.device().queue.get_timestamp_period());
                if let Some(p) = &mut self.profile {
                    p.gpu_rounds += std::time::Duration::from_nanos((ticks as f64 * period) as u64);
                    p.timed_rounds += 1;
                }
            }
            self.occupied = status.occupied;
            self.doccupied = status.doccupied;
            if status.range {
                return Err(Error::Gpu(
                    "a float sum/avg input reached magnitude 2^100 (1.3e30), beyond the GPU's \
                     exact accumulator; run this job with --backend cpu"
                        .into(),
                ));
            }
            if status.unresolved == 0 {
                self.slots[s].live = false;
                break;
            }
            rounds += 1;
            if rounds > MAX_ROUNDS {
                return Err(Error::Internal(format!(
                    "GPU window state: {} items still unplaced after {MAX_ROUNDS} rounds",
                    status.unresolved
                )));
            }
            // A table that grew since this round ran may already hold its leftovers.
            let current = self.slots[s].generation == self.tables_generation;
            if status.full
                && current
                && let Some(capacity) = grow_after_full(
                    &self.groups.keys,
                    status.occupied,
                    self.max_groups(),
                    "window groups",
                )?
            {
                self.rebuild(capacity, false)?;
            }
            if status.dfull
                && current
                && let Some(d) = &self.distinct
                && let Some(capacity) =
                    grow_after_full(d, status.doccupied, self.max_distinct(), "distinct values")?
            {
                self.grow_distinct_to(capacity);
            }
            self.round(s, false);
        }
        Ok(())
    }
}
