//! The keys of one shard and their frames. A call's rows are walked key by key (slot order),
//! so each key's running state is touched once per call and the flat per-slot arrays are
//! read front to back; a RANGE frame's rows enter its shared history in time order and
//! leave it from the front, the leaving rows grouped by key like the new ones and merged into
//! each key's walk in time order.
//!
//! A key whose every frame is RANGE and empty is forgotten at the next expiry and its slot
//! reused.

use std::collections::HashMap;

use super::by_key::{Gathered, Picked, RowsByKey, same_column};
use super::history::History;
use super::output::Output;
use super::running::{Acc, Answer};
use crate::aggregate::AggregateFunction;
use crate::backend::{AggregateInput, ColumnValues};
use crate::frame::OverFrame;

/// One aggregate of a frame, as a shard runs it.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// Its index in the plan: its input column, output column and running state.
    pub(super) aggregate: usize,
    pub(super) function: AggregateFunction,
    /// Its column of values in the frame's history (SUM and AVG subtract what leaves).
    pub(super) kept: Option<usize>,
    /// Whether a leaving row must say if it was null (every function but MIN, MAX and
    /// `COUNT(*)`).
    pub(super) counts_nulls: bool,
}

/// One distinct frame of the plan and the aggregates over it.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) frame: OverFrame,
    pub(super) members: Vec<Member>,
    /// Kept value columns in its history.
    pub(super) kept: usize,
}

/// Every key's running state for one aggregate, by slot.
#[derive(Debug, Clone)]
pub(super) enum Accs {
    /// `COUNT(*)`: the frame's row count is the answer.
    Rows,
    Int(Vec<Acc<i64>>),
    Float(Vec<Acc<f64>>),
}

/// Where a frame's rows are kept.
#[derive(Debug, Clone)]
pub(super) enum Rows {
    /// RANGE: one history for all keys, in time order.
    Shared(History),
    /// ROWS: one history per slot.
    PerKey(Vec<History>),
    /// Unbounded: nothing leaves, nothing kept.
    None,
}

/// One shard's keys and frames.
#[derive(Debug, Clone)]
pub(super) struct Shard {
    pub(super) slots: HashMap<u64, u32, ahash::RandomState>,
    /// Per slot, its key (`None`: a free slot).
    pub(super) keys: Vec<Option<u64>>,
    free: Vec<u32>,
    /// Per group, per slot: rows in the frame (unbounded: ever pushed).
    pub(super) counts: Vec<Vec<u64>>,
    /// Per group.
    pub(super) rows: Vec<Rows>,
    /// Per plan aggregate.
    pub(super) accs: Vec<Accs>,
    /// Slots whose frames emptied, freed at the next expiry if still empty.
    emptied: Vec<u32>,
    /// Whether keys can be forgotten (every frame is a bounded RANGE).
    expires: bool,
}

impl Shard {
    /// An empty shard for `groups`; `accs` holds one empty entry per plan aggregate.
    pub(super) fn new(groups: &[Group], accs: Vec<Accs>) -> Self {
        let rows = groups
            .iter()
            .map(|group| match group.frame {
                OverFrame::Range { .. } => Rows::Shared(History::new(group.kept)),
                OverFrame::Rows { .. } => Rows::PerKey(Vec::new()),
                OverFrame::RangeUnbounded | OverFrame::RowsUnbounded => Rows::None,
            })
            .collect();
        let expires = groups
            .iter()
            .all(|g| matches!(g.frame, OverFrame::Range { .. }));
        Shard {
            slots: HashMap::default(),
            keys: Vec::new(),
            free: Vec::new(),
            counts: vec![Vec::new(); groups.len()],
            rows,
            accs,
            emptied: Vec::new(),
            expires,
        }
    }

    /// Keys with state.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The slot of `key`, made empty if the key is new.
    pub(super) fn slot(&mut self, key: u64, groups: &[Group]) -> u32 {
        if let Some(&slot) = self.slots.get(&key) {
            return slot;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.keys[slot as usize] = Some(key);
                slot
            }
            None => {
                let slot = self.keys.len() as u32;
                self.keys.push(Some(key));
                for counts in &mut self.counts {
                    counts.push(0);
                }
                for (rows, group) in self.rows.iter_mut().zip(groups) {
                    if let Rows::PerKey(keys) = rows {
                        keys.push(History::new(group.kept));
                    }
                }
                for accs in &mut self.accs {
                    match accs {
                        Accs::Rows => {}
                        Accs::Int(a) => a.push(Acc::default()),
                        Accs::Float(a) => a.push(Acc::default()),
                    }
                }
                slot
            }
        };
        self.slots.insert(key, slot);
        slot
    }

    /// Runs `picked` rows of `call` through every frame, answering into `outputs` (one per
    /// plan aggregate, by position in `picked`).
    ///
    /// A large call runs in pieces of about [`PIECE_ROWS`] rows, each ending where the time
    /// changes (ties must be taken in together), so that what a piece gathers and scatters
    /// stays in cache.
    pub(super) fn run(
        &mut self,
        groups: &[Group],
        picked: Picked<'_>,
        call: &AggregateInput<'_>,
        outputs: &mut [Output],
    ) {
        let n = picked.len();
        let mut from = 0;
        while from < n {
            let mut to = (from + PIECE_ROWS).min(n);
            while to < n && call.ts[picked.row(to)] == call.ts[picked.row(to - 1)] {
                to += 1;
            }
            self.run_piece(groups, picked.part(from, to), call, outputs, from);
            from = to;
        }
    }

    /// [`Shard::run`] for one piece, answering from position `offset` of `outputs` on.
    fn run_piece(
        &mut self,
        groups: &[Group],
        picked: Picked<'_>,
        call: &AggregateInput<'_>,
        outputs: &mut [Output],
        offset: usize,
    ) {
        let AggregateInput { keys, ts, columns } = *call;
        let n = picked.len();
        let slots: Vec<u32> = (0..n)
            .map(|q| self.slot(keys[picked.row(q)], groups))
            .collect();
        let by_key = RowsByKey::new(&slots, self.keys.len());
        // Each distinct input column once, in key order.
        let mut source: Vec<usize> = Vec::with_capacity(columns.len());
        let mut gathered: Vec<Gathered> = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            match (0..i).find(|&j| same_column(&columns[j], column)) {
                Some(j) => source.push(source[j]),
                None => {
                    source.push(gathered.len());
                    gathered.push(by_key.gather_column(column, picked));
                }
            }
        }
        let views: Vec<ColumnValues<'_>> = gathered.iter().map(Gathered::values).collect();
        let inputs: Vec<&ColumnValues<'_>> = source.iter().map(|&s| &views[s]).collect();
        let walk = Walk {
            by_key: &by_key,
            ts: &by_key.gather(ts, picked),
            inputs: &inputs,
        };
        let mut answers: Vec<Output> = outputs.iter().map(|o| o.like(n)).collect();
        for (g, group) in groups.iter().enumerate() {
            match group.frame {
                OverFrame::Range { preceding } => {
                    let base = self.append(g, group, picked, ts, &slots, columns);
                    let last = ts[picked.row(n - 1)];
                    let leaving = self.take_leaving(g, last.saturating_sub(preceding));
                    self.walk_range(g, group, preceding, base, &walk, &leaving, &mut answers);
                }
                OverFrame::RangeUnbounded => {
                    self.walk_unbounded(g, group, &walk, &mut answers, true)
                }
                OverFrame::RowsUnbounded => {
                    self.walk_unbounded(g, group, &walk, &mut answers, false)
                }
                OverFrame::Rows { preceding } => {
                    self.walk_rows(g, group, preceding.saturating_add(1), &walk, &mut answers)
                }
            }
        }
        for (output, answers) in outputs.iter_mut().zip(&answers) {
            answers.scatter_into(&by_key, output, offset);
        }
    }

    /// Appends a call's rows, in its order, to RANGE frame `g`'s history; returns the first
    /// one's number.
    fn append(
        &mut self,
        g: usize,
        group: &Group,
        picked: Picked<'_>,
        ts: &[i64],
        slots: &[u32],
        columns: &[ColumnValues<'_>],
    ) -> u64 {
        let Rows::Shared(history) = &mut self.rows[g] else {
            return 0;
        };
        let base = history.pushed;
        let n = picked.len();
        history.pushed += n as u64;
        history.times.extend((0..n).map(|q| ts[picked.row(q)]));
        history.slots.extend(slots.iter().copied());
        let mut nulls_added = false;
        for (m, member) in group.members.iter().enumerate() {
            let nulls = match &columns[member.aggregate] {
                ColumnValues::Int(values, nulls) => {
                    if let Some(k) = member.kept {
                        let bits = (0..n).map(|q| values[picked.row(q)] as u64);
                        history.kept[k].extend(bits);
                    }
                    *nulls
                }
                ColumnValues::Float(values, nulls) => {
                    if let Some(k) = member.kept {
                        let bits = (0..n).map(|q| values[picked.row(q)].to_bits());
                        history.kept[k].extend(bits);
                    }
                    *nulls
                }
                ColumnValues::Rows => continue,
            };
            if let (Some(nulls), true) = (nulls, member.counts_nulls)
                && nulls.null_count() > 0
            {
                for q in 0..n {
                    if nulls.is_null(picked.row(q)) {
                        history.nulls.push_back((base + q as u64, m as u32));
                        nulls_added = true;
                    }
                }
            }
        }
        // Nulls of several members: in row order, as `pop` and the leaving rows read them.
        if nulls_added && group.members.len() > 1 {
            history.nulls.make_contiguous().sort_unstable();
        }
        base
    }

    /// Takes the rows of RANGE frame `g` before `bound` out of its history.
    fn take_leaving(&mut self, g: usize, bound: i64) -> Leaving {
        let Rows::Shared(history) = &mut self.rows[g] else {
            return Leaving::default();
        };
        let count = history.times.partition_point(|&t| t < bound);
        let first = history.front_seq();
        Leaving {
            first,
            times: history.times.drain(..count).collect(),
            slots: history.slots.drain(..count).collect(),
            kept: history
                .kept
                .iter_mut()
                .map(|k| k.drain(..count).collect())
                .collect(),
            nulls: {
                let end = first + count as u64;
                let n = history.nulls.partition_point(|&(s, _)| s < end);
                history.nulls.drain(..n).collect()
            },
        }
    }

    /// Runs a call's rows through RANGE frame `g` key by key, each key's leaving rows merged
    /// in: before the rows at `t` are taken in, the key's rows before `t - preceding` leave.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call's rows, columns and outputs, by reference"
    )]
    fn walk_range(
        &mut self,
        g: usize,
        group: &Group,
        preceding: i64,
        base: u64,
        walk: &Walk<'_>,
        leaving: &Leaving,
        answers: &mut [Output],
    ) {
        let by_key = walk.by_key;
        let gone = RowsByKey::new(&leaving.slots, self.keys.len());
        // The leaving rows' times and values in key order too: the walk then reads them in
        // order (gathering them first lets the loads overlap).
        let all = Picked::Span {
            first: 0,
            len: leaving.slots.len(),
        };
        let gone_times = gone.gather(&leaving.times, all);
        let gone_kept: Vec<Vec<u64>> = leaving.kept.iter().map(|k| gone.gather(k, all)).collect();
        let mut values = vec![0u64; group.kept];
        let nulls: std::collections::HashSet<(u64, u32)> = leaving.nulls.iter().copied().collect();
        let keys = self.keys.len();
        for s in 0..keys {
            let (from, to) = (by_key.starts[s] as usize, by_key.starts[s + 1] as usize);
            let (mut l, lend) = (gone.starts[s] as usize, gone.starts[s + 1] as usize);
            if from == to && l == lend {
                continue;
            }
            let slot = s as u32;
            let mut leave = |shard: &mut Shard, l: usize| {
                for (value, kept) in values.iter_mut().zip(&gone_kept) {
                    *value = kept[l];
                }
                let seq = leaving.first + u64::from(gone.order[l]);
                let null = |m: usize| !nulls.is_empty() && nulls.contains(&(seq, m as u32));
                shard.leave(g, group, slot, seq, &values, null);
            };
            let mut p = from;
            while p < to {
                let time = walk.ts[p];
                let mut end = p + 1;
                while end < to && walk.ts[end] == time {
                    end += 1;
                }
                let bound = time.saturating_sub(preceding);
                while l < lend && gone_times[l] < bound {
                    leave(self, l);
                    l += 1;
                }
                for q in p..end {
                    let seq = base + u64::from(by_key.order[q]);
                    self.push(g, group, slot, seq, false, walk.inputs, q);
                }
                for q in p..end {
                    self.answer(g, group, slot, q, answers);
                }
                p = end;
            }
            // The rest leave too: every later row is at least as late as this call's last.
            while l < lend {
                leave(self, l);
                l += 1;
            }
        }
    }

    /// Runs a call's rows through unbounded frame `g` key by key; `ties`: RANGE (rows at
    /// one time see each other) or ROWS.
    fn walk_unbounded(
        &mut self,
        g: usize,
        group: &Group,
        walk: &Walk<'_>,
        answers: &mut [Output],
        ties: bool,
    ) {
        let by_key = walk.by_key;
        for s in 0..self.keys.len() {
            let (from, to) = (by_key.starts[s] as usize, by_key.starts[s + 1] as usize);
            let slot = s as u32;
            let mut p = from;
            while p < to {
                let mut end = p + 1;
                while ties && end < to && walk.ts[end] == walk.ts[p] {
                    end += 1;
                }
                for q in p..end {
                    let seq = self.counts[g][s];
                    self.push(g, group, slot, seq, true, walk.inputs, q);
                }
                for q in p..end {
                    self.answer(g, group, slot, q, answers);
                }
                p = end;
            }
        }
    }

    /// Runs a call's rows through ROWS frame `g` (each key's newest `rows` rows) key by key.
    fn walk_rows(
        &mut self,
        g: usize,
        group: &Group,
        rows: u64,
        walk: &Walk<'_>,
        answers: &mut [Output],
    ) {
        let by_key = walk.by_key;
        let mut values = vec![0u64; group.kept];
        let mut nulls = Vec::new();
        for s in 0..self.keys.len() {
            let (from, to) = (by_key.starts[s] as usize, by_key.starts[s + 1] as usize);
            let slot = s as u32;
            for q in from..to {
                self.push_row(g, group, slot, walk.ts[q], walk.inputs, q);
                loop {
                    let Rows::PerKey(keys) = &mut self.rows[g] else {
                        return;
                    };
                    let history = &mut keys[s];
                    if history.len() as u64 <= rows {
                        break;
                    }
                    let Some(seq) = history.pop(&mut values, &mut nulls) else {
                        break;
                    };
                    self.leave(g, group, slot, seq, &values, |m| {
                        nulls.contains(&(m as u32))
                    });
                }
                self.answer(g, group, slot, q, answers);
            }
        }
    }

    /// Takes row `at` of `inputs` into bounded frame `g` of `slot`, its history included,
    /// at `time` (a ROWS frame's row, or a restored checkpoint's).
    pub(super) fn push_row(
        &mut self,
        g: usize,
        group: &Group,
        slot: u32,
        time: i64,
        inputs: &[&ColumnValues<'_>],
        at: usize,
    ) {
        let history = match &mut self.rows[g] {
            Rows::Shared(history) => history,
            Rows::PerKey(keys) => &mut keys[slot as usize],
            Rows::None => return,
        };
        let shared = matches!(group.frame, OverFrame::Range { .. });
        let seq = history.push(time, slot, shared);
        for (m, member) in group.members.iter().enumerate() {
            let value = match inputs[member.aggregate] {
                ColumnValues::Int(v, n) => valid(*n, at).then(|| v[at] as u64),
                ColumnValues::Float(v, n) => valid(*n, at).then(|| v[at].to_bits()),
                ColumnValues::Rows => continue,
            };
            if let Some(k) = member.kept {
                history.keep(k, value.unwrap_or(0));
            }
            if value.is_none() && member.counts_nulls {
                history.null(seq, m);
            }
        }
        self.push(g, group, slot, seq, false, inputs, at);
    }

    /// Takes position `at` of `inputs` into frame `g` of `slot` as row `seq` (the running
    /// aggregates and the frame's count; histories are the caller's).
    #[expect(
        clippy::too_many_arguments,
        reason = "one call's rows, columns and outputs, by reference"
    )]
    #[inline]
    pub(super) fn push(
        &mut self,
        g: usize,
        group: &Group,
        slot: u32,
        seq: u64,
        unbounded: bool,
        inputs: &[&ColumnValues<'_>],
        at: usize,
    ) {
        let s = slot as usize;
        self.counts[g][s] += 1;
        for member in &group.members {
            match (&mut self.accs[member.aggregate], inputs[member.aggregate]) {
                (Accs::Int(accs), ColumnValues::Int(values, nulls)) => {
                    let value = valid(*nulls, at).then(|| values[at]);
                    accs[s].push(member.function, unbounded, seq, value);
                }
                (Accs::Float(accs), ColumnValues::Float(values, nulls)) => {
                    let value = valid(*nulls, at).then(|| values[at]);
                    accs[s].push(member.function, unbounded, seq, value);
                }
                _ => {}
            }
        }
    }

    /// Undoes row `seq` of `slot` leaving frame `g`: `values` its kept values, `null(m)`
    /// whether it was null for member `m`.
    #[inline]
    pub(super) fn leave(
        &mut self,
        g: usize,
        group: &Group,
        slot: u32,
        seq: u64,
        values: &[u64],
        null: impl Fn(usize) -> bool,
    ) {
        let s = slot as usize;
        for (m, member) in group.members.iter().enumerate() {
            let null = member.counts_nulls && null(m);
            let bits = member.kept.map_or(0, |k| values[k]);
            match &mut self.accs[member.aggregate] {
                Accs::Rows => {}
                Accs::Int(accs) => {
                    accs[s].leave(member.function, seq, (!null).then_some(bits as i64))
                }
                Accs::Float(accs) => {
                    accs[s].leave(member.function, seq, (!null).then(|| f64::from_bits(bits)))
                }
            }
        }
        let count = &mut self.counts[g][s];
        *count -= 1;
        if *count == 0 && self.expires {
            self.emptied.push(slot);
        }
    }

    /// Writes frame `g`'s answers for `slot` into position `at` of the outputs.
    #[inline]
    fn answer(&self, g: usize, group: &Group, slot: u32, at: usize, outputs: &mut [Output]) {
        let s = slot as usize;
        for member in &group.members {
            let answer = match &self.accs[member.aggregate] {
                Accs::Rows => Answer::Int(self.counts[g][s] as i64),
                Accs::Int(accs) => accs[s].answer(member.function),
                Accs::Float(accs) => accs[s].answer(member.function),
            };
            outputs[member.aggregate].set(at, answer);
        }
    }

    /// Drops what no row at `watermark` or later can see: RANGE rows before each frame's
    /// reach, then the keys left with no rows in any frame.
    pub(super) fn expire(&mut self, groups: &[Group], watermark: i64) {
        for (g, group) in groups.iter().enumerate() {
            if let OverFrame::Range { preceding } = group.frame {
                let leaving = self.take_leaving(g, watermark.saturating_sub(preceding));
                let mut values = vec![0u64; group.kept];
                for i in 0..leaving.times.len() {
                    let seq = leaving.first + i as u64;
                    for (value, kept) in values.iter_mut().zip(&leaving.kept) {
                        *value = kept[i];
                    }
                    let null = |m: usize| leaving.nulls.contains(&(seq, m as u32));
                    self.leave(g, group, leaving.slots[i], seq, &values, null);
                }
            }
        }
        let emptied = std::mem::take(&mut self.emptied);
        for slot in emptied {
            let s = slot as usize;
            if self.counts.iter().any(|c| c[s] > 0) {
                continue;
            }
            let Some(key) = self.keys[s].take() else {
                continue;
            };
            self.slots.remove(&key);
            for accs in &mut self.accs {
                match accs {
                    Accs::Rows => {}
                    Accs::Int(a) => a[s] = Acc::default(),
                    Accs::Float(a) => a[s] = Acc::default(),
                }
            }
            self.free.push(slot);
        }
    }
}

#[inline]
fn valid(nulls: Option<&arrow::buffer::NullBuffer>, row: usize) -> bool {
    nulls.is_none_or(|n| n.is_valid(row))
}

/// Rows per piece of a call: what a piece gathers and scatters (a few MB) stays in cache.
const PIECE_ROWS: usize = 64 * 1024;

/// What every frame's walk of one call reads, in key order.
struct Walk<'a> {
    by_key: &'a RowsByKey,
    ts: &'a [i64],
    /// Per plan aggregate, its input.
    inputs: &'a [&'a ColumnValues<'a>],
}

/// The rows leaving a RANGE frame's history in one go, oldest first.
#[derive(Debug, Default)]
struct Leaving {
    /// The first one's number.
    first: u64,
    times: Vec<i64>,
    slots: Vec<u32>,
    kept: Vec<Vec<u64>>,
    /// (row number, member) of their nulls.
    nulls: Vec<(u64, u32)>,
}
