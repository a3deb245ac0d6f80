// Stream-join buffer, expire: one invocation per index slot walks its key's chain and unlinks
// the rows older than the expiry bound, keeping the others in order; freed slots go onto the
// free stack (in any order: a slot's position never shows in results). Counts the rows and
// keys that remain, so the host knows the buffer's size exactly afterwards.
// p.mask: index capacity - 1; p.min_open_lo/hi: the bound; p.first: free slots before this
// pass (freed ones are pushed above them); p.last: the slab's length (no chain is longer).

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read_write> index: array<u32>;
@group(0) @binding(2) var<storage, read_write> entries: array<u32>;
@group(0) @binding(3) var<storage, read_write> free: array<u32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let s = linear_id(gid, groups);
    if (s > p.mask || index[s] == 0u) {
        return;
    }
    let bound = vec2<u32>(p.min_open_lo, p.min_open_hi);
    var head = NONE;
    var last = NONE;  // the oldest row kept so far: the next kept row hangs below it
    var kept = 0u;
    var slot = index[key_at(s) + 2u];
    for (var steps = 0u; slot != NONE && steps < p.last; steps++) {
        let at = ENTRY * slot;
        let older = entries[at + E_OLDER];
        if (lt64s(vec2<u32>(entries[at + E_TS], entries[at + E_TS + 1u]), bound)) {
            free[p.first + atomicAdd(&counters[J_FREED], 1u)] = slot;
        } else {
            if (last == NONE) {
                head = slot;
            } else {
                entries[ENTRY * last + E_OLDER] = slot;
            }
            last = slot;
            kept += 1u;
        }
        slot = older;
    }
    if (last != NONE) {
        entries[ENTRY * last + E_OLDER] = NONE;
        atomicAdd(&counters[J_LIVE], kept);
        atomicAdd(&counters[J_KEYS], 1u);
    }
    index[key_at(s) + 2u] = head;
}
