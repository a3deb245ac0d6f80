// Marks every claimed entry of a hash table as settled (tag 1) before pass tags are reused, so
// a tag always names a claim of the current pass and an item never defers on an old entry.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read_write> table: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = linear_id(gid, groups);
    if (e >= p.items) {
        return;
    }
    let state = atomicLoad(&table[e]);
    if (state != 0u) {
        atomicStore(&table[e], (state & 0xFFFFFF00u) | 1u);
    }
}
