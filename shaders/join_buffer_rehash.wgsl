// Stream-join buffer, rehash: moves every key that still has rows into a new, empty index (to
// grow it, or to drop keys whose rows all expired). Keys are distinct, so an insert only ever
// claims the first empty slot of its probe sequence.
// p.mask: old index capacity - 1; p.new_mask: new index capacity - 1.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read_write> new_index: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> counters: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = linear_id(gid, groups);
    if (s > p.mask || index[s] == 0u || index[key_at(s) + 2u] == NONE) {
        return;
    }
    let lo = index[key_at(s)];
    let hi = index[key_at(s) + 1u];
    var n = hash4(vec4<u32>(lo, hi, 0u, 0u), p.hash_mode) & p.new_mask;
    loop {
        let claim = atomicCompareExchangeWeak(&new_index[n], 0u, SETTLED);
        if (claim.exchanged) {
            break;
        }
        if (claim.old_value != 0u) {
            n = (n + 1u) & p.new_mask;
        }
    }
    let at = p.new_mask + 1u + KEY * n;
    atomicStore(&new_index[at], lo);
    atomicStore(&new_index[at + 1u], hi);
    atomicStore(&new_index[at + 2u], index[key_at(s) + 2u]);
    atomicAdd(&counters[J_CLAIMED], 1u);
}
