// window_update with the adapter's native 64-bit atomics (SHADER_INT64 and
// SHADER_INT64_ATOMIC_ALL_OPS): one atomic per count, sum and min/max (no low-word pass), and
// float sums with 64-bit limbs. Same accumulator words and results as window_update followed
// by window_minmax_lo, which run where the feature is missing.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> batch: array<u32>;
// The same words as `acc: array<atomic<u32>>` elsewhere: every field starts at an even word.
@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u64>>;
@group(0) @binding(3) var<storage, read_write> item_slot: array<u32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> aggs: array<AggDesc>;

fn as_u64(v: vec2<u32>) -> u64 {
    return u64(v.x) | (u64(v.y) << 32u);
}

// Adds `x` at limb `at`, carrying into the following limbs up to (not including) `end`.
fn add_limb(at: u32, x: u64, end: u32) {
    var w = at;
    var v = x;
    loop {
        if (w >= end || v == 0lu) {
            break;
        }
        let old = atomicAdd(&acc[w], v);
        if (old + v >= old) {
            break;
        }
        w += 1u;
        v = 1lu;
    }
}

// `acc_add_float` of accumulators.wgsl with 64-bit limbs; `at` is a limb index.
fn add_float(at: u32, v: vec2<u32>) {
    let hi = v.y;
    let exp = (hi >> 20u) & 0x7FFu;
    let negative = (hi >> 31u) == 1u;
    if (exp == 0x7FFu) {
        var flag = F_PINF;
        if (((hi & 0xFFFFFu) | v.x) != 0u) {
            flag = F_NAN;
        } else if (negative) {
            flag = F_NINF;
        }
        atomicOr(&acc[at + FX_FLAGS / 2u], u64(flag));
        return;
    }
    if (exp == 0u) {
        return;
    }
    let m = (u64((hi & 0xFFFFFu) | 0x100000u) << 32u) | u64(v.x);
    let sh = i32(exp) - 963;
    if (sh + 53 > 212) {
        atomicOr(&counters[C_RANGE], 1u);
        return;
    }
    if (sh <= -53) {
        return;
    }
    var base = at;
    if (negative) {
        base = at + FX_WORDS / 2u;
    }
    let end = base + FX_WORDS / 2u;
    if (sh < 0) {
        add_limb(base, m >> u32(-sh), end);
        return;
    }
    let q = u32(sh) / 64u;
    let r = u32(sh) % 64u;
    add_limb(base + q, m << r, end);
    if (r != 0u && base + q + 1u < end) {
        add_limb(base + q + 1u, m >> (64u - r), end);
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let item = linear_id(gid, groups);
    if (item >= p.items) {
        return;
    }
    let state = item_slot[item];
    if (state == SKIP || (state & SLOT_MASK) == UNRESOLVED || (state & DONE_UPDATE) != 0u) {
        return;
    }
    let base = (state & SLOT_MASK) * p.stride;
    let row = item / p.per_row;
    for (var d = 0u; d < p.n_aggs; d++) {
        let desc = aggs[d];
        let at = (base + desc.acc_at) / 2u;
        if (desc.op == OP_COUNT_ROWS) {
            atomicAdd(&acc[at], 1lu);
            continue;
        }
        if (!is_valid(desc, row)) {
            continue;
        }
        switch desc.op {
            case 1u, 8u, 9u: { // OP_COUNT; distinct counts are added by distinct_insert
                if (desc.op == OP_COUNT) {
                    atomicAdd(&acc[at], 1lu);
                }
            }
            case 2u: { // OP_SUM_INT: two's complement wraps like the CPU's wrapping_add
                atomicAdd(&acc[at], as_u64(batch_value(desc, row)));
                atomicAdd(&acc[at + 1u], 1lu);
            }
            case 3u: { // OP_SUM_FLOAT
                add_float(at, batch_value(desc, row));
                atomicAdd(&acc[at + FX_COUNT / 2u], 1lu);
            }
            default: { // min and max over order keys
                let is_float = desc.op == OP_MIN_FLOAT || desc.op == OP_MAX_FLOAT;
                let key = as_u64(order_key(batch_value(desc, row), is_float));
                atomicOr(&acc[at + 1u], 1lu);
                if (desc.op == OP_MIN_INT || desc.op == OP_MIN_FLOAT) {
                    atomicMin(&acc[at], key);
                } else {
                    atomicMax(&acc[at], key);
                }
            }
        }
    }
    item_slot[item] = state | DONE_UPDATE | DONE_LO;
}
