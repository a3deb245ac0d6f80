// Finds a session micro-batch's late rows before any of its rows is applied: a row whose own
// window [ts, ts + gap) ends at or before the watermark fired through (`min_open`) is late
// unless it touches a session open before the batch, that is, unless some event already in
// the table is within `gap` of it: in its own bucket, in the previous one no earlier than
// ts - gap, or in the next one no later than ts + gap. Late rows are skipped by the round and
// listed in `late` (unordered) for the host; every other row is left unresolved for
// window_assign.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> batch: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read> acc: array<u32>;
@group(0) @binding(4) var<storage, read_write> item_slot: array<u32>;
@group(0) @binding(5) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read> aggs: array<AggDesc>;
@group(0) @binding(7) var<storage, read_write> late: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = linear_id(gid, groups);
    if (row >= p.rows) {
        return;
    }
    // The min-event-time aggregate reads the event time column.
    let ts = batch_value(aggs[p.n_aggs - 2u], row);
    let own_end = add64(ts, gap());
    let fired = vec2<u32>(p.min_open_lo, p.min_open_hi);
    if (lt64s(fired, own_end)) {
        item_slot[row] = UNRESOLVED;
        return;
    }
    let key = batch_key(row);
    let w = batch_window(row);
    let k = vec4<u32>(key.x, key.y, w.x, w.y);
    var touches = find(k) != NONE;
    if (!touches) {
        let prev = find(neighbour(k, false));
        touches = prev != NONE && !lt64s(add64(last_ts(prev), gap()), ts);
    }
    if (!touches) {
        let next = find(neighbour(k, true));
        touches = next != NONE && !lt64s(own_end, first_ts(next));
    }
    if (touches) {
        item_slot[row] = UNRESOLVED;
        return;
    }
    item_slot[row] = SKIP;
    late[atomicAdd(&counters[C_LATE], 1u)] = row;
}
