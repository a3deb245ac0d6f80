// Rebuilds the distinct-value table after window_fire: entries of closed groups are dropped,
// the others move to the new table with their group's new slot (or keep it when `identity`,
// for growth of the distinct table alone).

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> old_dtable: array<u32>;
@group(0) @binding(2) var<storage, read_write> new_dtable: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> slot_map: array<u32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = linear_id(gid, groups);
    if (e > p.dmask || old_dtable[e] == 0u) {
        return;
    }
    let at = p.dmask + 1u + 4u * e;
    var k = vec4<u32>(old_dtable[at], old_dtable[at + 1u], old_dtable[at + 2u], old_dtable[at + 3u]);
    if (p.identity == 0u) {
        let moved = slot_map[k.x];
        if (moved == CLOSED) {
            return;
        }
        k.x = moved;
    }
    let h = hash4(k, p.hash_mode);
    let mine = (fingerprint(h, p.hash_mode) << 8u) | 1u;
    var n = h & p.new_mask;
    loop {
        if (atomicLoad(&new_dtable[n]) == 0u) {
            let r = atomicCompareExchangeWeak(&new_dtable[n], 0u, mine);
            if (r.exchanged) {
                break;
            }
            if (r.old_value == 0u) {
                continue;
            }
        }
        n = (n + 1u) & p.new_mask;
    }
    atomicAdd(&counters[C_DOCCUPIED], 1u);
    let nat = p.new_mask + 1u + 4u * n;
    atomicStore(&new_dtable[nat], k.x);
    atomicStore(&new_dtable[nat + 1u], k.y);
    atomicStore(&new_dtable[nat + 2u], k.z);
    atomicStore(&new_dtable[nat + 3u], k.w);
}
