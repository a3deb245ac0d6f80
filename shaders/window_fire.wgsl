// Closes windows and rebuilds the group table in one sweep over the old table: a group whose
// window index is below `min_open` is written, with its accumulator words, to `out` (compacted
// by an atomic cursor); every other group moves to the new table, which may be larger (growth).
// `slot_map` records where each old slot went so item slots and distinct entries can follow.
// With `close` 2 (sessions), the groups session_fire marked CLOSED in `slot_map` are dropped
// instead (session_fire has written their rows). Keys are unique, so a move only needs an
// empty slot: it never defers.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> old_table: array<u32>;
@group(0) @binding(2) var<storage, read> old_acc: array<u32>;
@group(0) @binding(3) var<storage, read_write> new_table: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> new_acc: array<u32>;
@group(0) @binding(5) var<storage, read_write> slot_map: array<u32>;
@group(0) @binding(6) var<storage, read_write> out: array<u32>;
@group(0) @binding(7) var<storage, read_write> counters: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = linear_id(gid, groups);
    if (s > p.mask || old_table[s] == 0u) {
        return;
    }
    if (p.close == 2u && slot_map[s] == CLOSED) {
        return;
    }
    let at = p.mask + 1u + 4u * s;
    let k = vec4<u32>(old_table[at], old_table[at + 1u], old_table[at + 2u], old_table[at + 3u]);
    if (p.close == 1u && lt64s(k.zw, vec2<u32>(p.min_open_lo, p.min_open_hi))) {
        let row = atomicAdd(&counters[C_OUT], 1u);
        let width = 4u + p.stride;
        out[row * width] = k.x;
        out[row * width + 1u] = k.y;
        out[row * width + 2u] = k.z;
        out[row * width + 3u] = k.w;
        for (var w = 0u; w < p.stride; w++) {
            out[row * width + 4u + w] = old_acc[s * p.stride + w];
        }
        slot_map[s] = CLOSED;
        return;
    }
    let h = hash4(k, p.hash_mode);
    let mine = (fingerprint(h, p.hash_mode) << 8u) | 1u;
    var n = h & p.new_mask;
    loop {
        if (atomicLoad(&new_table[n]) == 0u) {
            let r = atomicCompareExchangeWeak(&new_table[n], 0u, mine);
            if (r.exchanged) {
                break;
            }
            if (r.old_value == 0u) {
                continue;
            }
        }
        n = (n + 1u) & p.new_mask;
    }
    atomicAdd(&counters[C_OCCUPIED], 1u);
    let nat = p.new_mask + 1u + 4u * n;
    atomicStore(&new_table[nat], k.x);
    atomicStore(&new_table[nat + 1u], k.y);
    atomicStore(&new_table[nat + 2u], k.z);
    atomicStore(&new_table[nat + 3u], k.w);
    for (var w = 0u; w < p.stride; w++) {
        new_acc[n * p.stride + w] = old_acc[s * p.stride + w];
    }
    slot_map[s] = n;
}
