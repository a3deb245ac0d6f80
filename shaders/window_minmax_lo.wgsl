// The second half of exact 64-bit min/max from 32-bit atomics: with every high word of the
// round final, items whose high word equals their group's fold their low word in.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> batch: array<u32>;
@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> item_slot: array<u32>;
@group(0) @binding(4) var<storage, read> aggs: array<AggDesc>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let item = linear_id(gid, groups);
    if (item >= p.items) {
        return;
    }
    let state = item_slot[item];
    if (state == SKIP || (state & DONE_UPDATE) == 0u || (state & DONE_LO) != 0u) {
        return;
    }
    let base = (state & SLOT_MASK) * p.stride;
    let row = item / p.per_row;
    for (var d = 0u; d < p.n_aggs; d++) {
        let desc = aggs[d];
        if (desc.op < OP_MIN_INT || desc.op > OP_MAX_FLOAT || !is_valid(desc, row)) {
            continue;
        }
        let at = base + desc.acc_at;
        let is_float = desc.op == OP_MIN_FLOAT || desc.op == OP_MAX_FLOAT;
        let key = order_key(batch_value(desc, row), is_float);
        if (atomicLoad(&acc[at + 1u]) == key.y) {
            if (desc.op == OP_MIN_INT || desc.op == OP_MIN_FLOAT) {
                atomicMin(&acc[at], key.x);
            } else {
                atomicMax(&acc[at], key.x);
            }
        }
    }
    item_slot[item] = state | DONE_LO;
}
