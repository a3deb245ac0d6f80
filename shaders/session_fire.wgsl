// Closes sessions: one invocation per table slot; the slot that starts a session (its key's
// previous bucket is absent or not connected) walks the run of buckets that make it up. When
// the session ends (last event + gap) at or before the watermark (`min_open`), it writes one
// row to `out` (key, start, end, then every bucket's accumulators folded together) and marks
// each of its buckets CLOSED in `slot_map` for window_fire to drop; otherwise it marks them
// KEEP. Every occupied slot belongs to exactly one run, so every one is marked once.
// count_distinct is left at 0 here: session_distinct counts the union of the buckets' values.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> acc: array<u32>;
@group(0) @binding(3) var<storage, read_write> slot_map: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
@group(0) @binding(5) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read> aggs: array<AggDesc>;
// Per slot: the `out` row of the closing session it belongs to, or NONE (session_distinct).
@group(0) @binding(7) var<storage, read_write> session_rows: array<u32>;

// Adds the `n`-word integer at acc word `src` into out word `dst` (wrapping, as on the CPU).
fn add_words(dst: u32, src: u32, n: u32) {
    var carry = 0u;
    for (var i = 0u; i < n; i++) {
        let a = out[dst + i];
        let b = acc[src + i];
        let s = a + b;
        let c1 = select(0u, 1u, s < a);
        let t = s + carry;
        let c2 = select(0u, 1u, t < s);
        out[dst + i] = t;
        carry = c1 + c2;
    }
}

// Folds bucket slot `s`'s accumulators into the row at out word `row_at`.
fn fold(row_at: u32, s: u32) {
    let base = s * p.stride;
    for (var d = 0u; d < p.n_aggs; d++) {
        let desc = aggs[d];
        let dst = row_at + desc.acc_at;
        let src = base + desc.acc_at;
        switch desc.op {
            case 2u: { // OP_SUM_INT: sum, count
                add_words(dst, src, 2u);
                add_words(dst + 2u, src + 2u, 2u);
            }
            case 3u: { // OP_SUM_FLOAT: positive, negative, flags, count
                add_words(dst, src, FX_WORDS);
                add_words(dst + FX_WORDS, src + FX_WORDS, FX_WORDS);
                out[dst + FX_FLAGS] = out[dst + FX_FLAGS] | acc[src + FX_FLAGS];
                add_words(dst + FX_COUNT, src + FX_COUNT, 2u);
            }
            case 4u, 5u, 6u, 7u: { // min, max: order key (lo, hi), has-value
                let mine = vec2<u32>(out[dst], out[dst + 1u]);
                let theirs = vec2<u32>(acc[src], acc[src + 1u]);
                let is_min = desc.op == OP_MIN_INT || desc.op == OP_MIN_FLOAT;
                let below = theirs.y < mine.y || (theirs.y == mine.y && theirs.x < mine.x);
                let above = theirs.y > mine.y || (theirs.y == mine.y && theirs.x > mine.x);
                let better = out[dst + 2u] == 0u || (is_min && below) || (!is_min && above);
                if (acc[src + 2u] != 0u && better) {
                    out[dst] = theirs.x;
                    out[dst + 1u] = theirs.y;
                    out[dst + 2u] = 1u;
                }
            }
            case 8u, 9u: {} // count_distinct: session_distinct counts the union
            default: { // counts
                add_words(dst, src, 2u);
            }
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = linear_id(gid, groups);
    if (s > p.mask || table[s] == 0u) {
        return;
    }
    let k = key_of(s);
    let prev = find(neighbour(k, false));
    if (prev != NONE && connected(prev, s)) {
        return; // not the first bucket of its session
    }
    var last = s;
    var length = 1u;
    loop {
        let next = find(neighbour(key_of(last), true));
        if (next == NONE || !connected(last, next)) {
            break;
        }
        last = next;
        length += 1u;
    }
    let end = add64(last_ts(last), gap());
    let closes = !lt64s(vec2<u32>(p.min_open_lo, p.min_open_hi), end);
    var row_at = 0u;
    if (closes) {
        let width = 6u + p.stride;
        row_at = atomicAdd(&counters[C_OUT], 1u) * width;
        let start = first_ts(s);
        out[row_at] = k.x;
        out[row_at + 1u] = k.y;
        out[row_at + 2u] = start.x;
        out[row_at + 3u] = start.y;
        out[row_at + 4u] = end.x;
        out[row_at + 5u] = end.y;
        for (var w = 0u; w < p.stride; w++) {
            out[row_at + 6u + w] = acc[s * p.stride + w];
        }
        for (var d = 0u; d < p.n_aggs; d++) {
            if (aggs[d].op == OP_DISTINCT_INT || aggs[d].op == OP_DISTINCT_FLOAT) {
                out[row_at + 6u + aggs[d].acc_at] = 0u;
                out[row_at + 7u + aggs[d].acc_at] = 0u;
            }
        }
    }
    let row = select(NONE, row_at / (6u + p.stride), closes);
    var b = s;
    for (var i = 0u; i < length; i++) {
        if (i > 0u) {
            b = find(neighbour(key_of(b), true));
            if (closes) {
                fold(row_at + 6u, b);
            }
        }
        slot_map[b] = select(KEEP, CLOSED, closes);
        session_rows[b] = row;
    }
}
