//! Checkpoint state of the GPU window aggregator: its tables read back, compacted to the
//! occupied entries, and written back into the same slots on restore.
//!
//! An entry keeps its slot (its position in the table): the distinct-value table refers to
//! group slots, and a table restored at the same capacity and hash mode then holds exactly the
//! words it held, so the restored job continues bit for bit. Only occupied entries are saved
//! (a state word of 0 is empty), so a checkpoint grows with the groups, not the capacity.

use arrow::array::{Array, AsArray, FixedSizeBinaryArray, RecordBatch, UInt32Array};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema, UInt32Type};
use serde::{Deserialize, Serialize};

use super::*;
use crate::state::StateSnapshot;

/// The layout of this aggregator's checkpoint state.
const STATE_FORMAT: &str = "gpu-window/1";

/// Everything besides the table entries.
#[derive(Debug, Serialize, Deserialize)]
struct GpuMeta {
    capacity: u32,
    distinct_capacity: Option<u32>,
    stride: u32,
    hash_mode: u32,
    tag: u32,
    fired_through: i64,
    first_open: i64,
    lowest_window: i64,
    occupied: u32,
    doccupied: u32,
    counters: Vec<u32>,
}

impl GpuWindowAggregator {
    /// Drains the rounds in flight and copies the tables out.
    pub(super) fn take_snapshot(&mut self) -> Result<StateSnapshot> {
        self.drain_both()?;
        let capacity = self.groups.keys.capacity;
        let stride = self.layout.stride;
        let keys = self.read_words(&self.groups.keys.buffer, u64::from(capacity) * 5)?;
        let acc = self.read_words(&self.groups.acc, u64::from(capacity) * u64::from(stride))?;
        let groups = entries(&keys, capacity, Some((&acc, stride)))?;
        let counters = self.read_words(&self.counters, COUNTERS)?;
        let mut snapshot =
            StateSnapshot::new(STATE_FORMAT, serde_json::Value::Null).with_batch("groups", groups);
        let distinct_capacity = match &self.distinct {
            Some(d) => {
                let words = self.read_words(&d.buffer, u64::from(d.capacity) * 5)?;
                snapshot = snapshot.with_batch("distinct", entries(&words, d.capacity, None)?);
                Some(d.capacity)
            }
            None => None,
        };
        let meta = GpuMeta {
            capacity,
            distinct_capacity,
            stride,
            hash_mode: self.tuning.hash_mode,
            tag: self.tag,
            fired_through: self.fired_through,
            first_open: self.first_open,
            lowest_window: self.lowest_window,
            occupied: self.occupied,
            doccupied: self.doccupied,
            counters,
        };
        snapshot.meta = serde_json::to_value(meta)
            .map_err(|e| Error::Internal(format!("GPU state metadata: {e}")))?;
        Ok(snapshot)
    }

    /// Writes `state`'s entries back into tables of its capacity.
    pub(super) fn load_snapshot(&mut self, state: &StateSnapshot) -> Result<()> {
        state.expect_format(STATE_FORMAT)?;
        let meta: GpuMeta = state.meta_as()?;
        if meta.stride != self.layout.stride || meta.hash_mode != self.tuning.hash_mode {
            return Err(Error::Internal(
                "saved GPU window state has another accumulator layout or hash mode".into(),
            ));
        }
        if meta.capacity > self.max_groups()
            || meta.distinct_capacity.unwrap_or(0) > self.max_distinct()
        {
            return Err(Error::Gpu(format!(
                "the saved state needs a table of {} groups, more than this GPU's bindings \
                 hold; restore it on the device that wrote it or with more memory",
                meta.capacity
            )));
        }
        self.drain_both()?;
        let stride = meta.stride;
        let (keys, acc) = table_words(state.batch("groups")?, meta.capacity, stride)?;
        let largest = meta.capacity >= self.max_groups();
        let groups = GroupTable::new(self.device(), meta.capacity, stride, largest);
        let queue = &self.device().queue;
        queue.write_buffer(&groups.keys.buffer, 0, bytemuck::cast_slice(&keys));
        queue.write_buffer(&groups.acc, 0, bytemuck::cast_slice(&acc));
        self.groups = groups;
        self.spare = None;
        match (meta.distinct_capacity, &self.distinct) {
            (Some(capacity), Some(_)) => {
                let (words, _) = table_words(state.batch("distinct")?, capacity, 0)?;
                let largest = capacity >= self.max_distinct();
                let table = HashTable::new(self.device(), "distinct values", capacity, largest);
                self.device()
                    .queue
                    .write_buffer(&table.buffer, 0, bytemuck::cast_slice(&words));
                self.distinct = Some(table);
                self.spare_distinct = None;
            }
            (None, None) => {}
            _ => {
                return Err(Error::Internal(
                    "saved GPU window state disagrees with the plan on count_distinct".into(),
                ));
            }
        }
        let capacity = u64::from(meta.capacity);
        let device = self.device();
        let slot_map = storage(device, "slot map", capacity * 4);
        let session_rows = storage(device, "session rows", capacity * 4);
        let out = storage(device, "closed groups", out_bytes(meta.capacity, stride));
        self.slot_map = slot_map;
        self.session_rows = session_rows;
        self.out = out;
        self.out_staging = None;
        self.device()
            .queue
            .write_buffer(&self.counters, 0, bytemuck::cast_slice(&meta.counters));
        self.tag = meta.tag;
        self.fired_through = meta.fired_through;
        self.first_open = meta.first_open;
        self.lowest_window = meta.lowest_window;
        self.occupied = meta.occupied;
        self.doccupied = meta.doccupied;
        self.tables_generation += 1;
        Ok(())
    }

    /// Reads `words` u32 words of `buffer` (blocking; checkpoints only).
    fn read_words(&self, buffer: &wgpu::Buffer, words: u64) -> Result<Vec<u32>> {
        let bytes = words * 4;
        let staging = staging(self.device(), "checkpoint read", bytes);
        read_back(self.device(), buffer, &staging, bytes)
    }
}

/// The occupied entries of a table of `capacity` (state words first, then four key words per
/// entry), with their accumulators when `acc` is given.
fn entries(table: &[u32], capacity: u32, acc: Option<(&[u32], u32)>) -> Result<RecordBatch> {
    let capacity = capacity as usize;
    let (states, keys) = table.split_at(capacity);
    let mut slots = Vec::new();
    let mut saved_states = Vec::new();
    let mut key_bytes: Vec<u8> = Vec::new();
    let mut acc_bytes: Vec<u8> = Vec::new();
    for (slot, &state) in states.iter().enumerate() {
        if state == 0 {
            continue;
        }
        slots.push(slot as u32);
        saved_states.push(state);
        key_bytes.extend_from_slice(bytemuck::cast_slice(&keys[4 * slot..4 * slot + 4]));
        if let Some((words, stride)) = acc {
            let at = slot * stride as usize;
            acc_bytes.extend_from_slice(bytemuck::cast_slice(&words[at..at + stride as usize]));
        }
    }
    let mut fields = vec![
        Field::new("slot", DataType::UInt32, false),
        Field::new("state", DataType::UInt32, false),
        Field::new("key", DataType::FixedSizeBinary(16), false),
    ];
    let mut columns: Vec<arrow::array::ArrayRef> = vec![
        std::sync::Arc::new(UInt32Array::from(slots)),
        std::sync::Arc::new(UInt32Array::from(saved_states)),
        std::sync::Arc::new(FixedSizeBinaryArray::new(
            16,
            Buffer::from_vec(key_bytes),
            None,
        )),
    ];
    if let Some((_, stride)) = acc {
        let width = (stride * 4) as i32;
        fields.push(Field::new("acc", DataType::FixedSizeBinary(width), false));
        columns.push(std::sync::Arc::new(FixedSizeBinaryArray::new(
            width,
            Buffer::from_vec(acc_bytes),
            None,
        )));
    }
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)
        .map_err(Error::arrow("packing GPU window state"))
}

/// A saved table's words: the table of `capacity` and, when `stride > 0`, its accumulators.
fn table_words(batch: &RecordBatch, capacity: u32, stride: u32) -> Result<(Vec<u32>, Vec<u32>)> {
    let mismatch = || Error::Internal("saved GPU window state has the wrong columns".into());
    let slots = batch
        .column(0)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(mismatch)?;
    let states = batch
        .column(1)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(mismatch)?;
    let keys = batch
        .column(2)
        .as_fixed_size_binary_opt()
        .filter(|k| k.value_length() == 16)
        .ok_or_else(mismatch)?;
    let acc = if stride > 0 {
        let acc = batch
            .column(3)
            .as_fixed_size_binary_opt()
            .filter(|a| a.value_length() == (stride * 4) as i32)
            .ok_or_else(mismatch)?;
        Some(acc)
    } else {
        None
    };
    let cap = capacity as usize;
    let mut table = vec![0u32; cap * 5];
    let mut acc_words = vec![0u32; cap * stride as usize];
    for row in 0..slots.len() {
        let slot = slots.value(row) as usize;
        if slot >= cap || slots.is_null(row) {
            return Err(mismatch());
        }
        table[slot] = states.value(row);
        let key: &[u8] = keys.value(row);
        for (w, chunk) in key.chunks_exact(4).enumerate() {
            table[cap + 4 * slot + w] =
                u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        if let Some(acc) = acc {
            let at = slot * stride as usize;
            for (w, chunk) in acc.value(row).chunks_exact(4).enumerate() {
                acc_words[at + w] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        }
    }
    Ok((table, acc_words))
}
