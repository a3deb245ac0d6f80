// After the group table grew mid-batch, points resolved items of in-flight micro-batches at
// their groups' new slots (keeping the flags of the passes that consumed them).

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read_write> item_slot: array<u32>;
@group(0) @binding(2) var<storage, read> slot_map: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let item = linear_id(gid, groups);
    if (item >= p.items) {
        return;
    }
    let state = item_slot[item];
    if (state == SKIP || (state & SLOT_MASK) == UNRESOLVED) {
        return;
    }
    item_slot[item] = (state & ~SLOT_MASK) | slot_map[state & SLOT_MASK];
}
