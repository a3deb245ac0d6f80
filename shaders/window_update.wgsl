// Folds every resolved item of a micro-batch into its group's accumulators: counts, exact
// integer sums, fixed-point float sums, and the high word of min/max order keys (the low word
// follows in window_minmax_lo once every high word of the round is final).

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> batch: array<u32>;
@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> item_slot: array<u32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> aggs: array<AggDesc>;

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
        let at = base + desc.acc_at;
        if (desc.op == OP_COUNT_ROWS) {
            acc_add(at, 1u, at + 2u);
            continue;
        }
        if (!is_valid(desc, row)) {
            continue;
        }
        switch desc.op {
            case 1u, 8u, 9u: { // OP_COUNT; distinct counts are added by distinct_insert
                if (desc.op == OP_COUNT) {
                    acc_add(at, 1u, at + 2u);
                }
            }
            case 2u: { // OP_SUM_INT
                acc_add64(at, batch_value(desc, row));
                acc_add(at + 2u, 1u, at + 4u);
            }
            case 3u: { // OP_SUM_FLOAT
                acc_add_float(at, batch_value(desc, row));
                acc_add(at + FX_COUNT, 1u, at + FX_COUNT + 2u);
            }
            default: { // min and max: the high word (at + 1); a lower (higher) one resets the low
                let is_float = desc.op == OP_MIN_FLOAT || desc.op == OP_MAX_FLOAT;
                let key = order_key(batch_value(desc, row), is_float);
                atomicOr(&acc[at + 2u], 1u);
                if (desc.op == OP_MIN_INT || desc.op == OP_MIN_FLOAT) {
                    let old = atomicMin(&acc[at + 1u], key.y);
                    if (key.y < old) {
                        atomicStore(&acc[at], 0xFFFFFFFFu);
                    }
                } else {
                    let old = atomicMax(&acc[at + 1u], key.y);
                    if (key.y > old) {
                        atomicStore(&acc[at], 0u);
                    }
                }
            }
        }
    }
    item_slot[item] = state | DONE_UPDATE;
}
