// Lookup join, build: inserts each distinct key id of the table with its range of build rows
// into an open-addressing table. Ids are distinct, so an insert never meets its own key: it
// claims the first empty slot of its probe sequence (compare-and-swap on the state word).
// p.rows: distinct keys; p.mask: table capacity - 1; p.hash_mode as in window_assign.

@group(0) @binding(0) var<uniform> p: Pass;
// Per distinct key: id lo, id hi, first build row, build rows.
@group(0) @binding(1) var<storage, read> entries: array<u32>;
// [state words: capacity][per slot: id lo, id hi, first, count]
@group(0) @binding(2) var<storage, read_write> table: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i >= p.rows) {
        return;
    }
    let lo = entries[4u * i];
    let hi = entries[4u * i + 1u];
    var slot = hash4(vec4<u32>(lo, hi, 0u, 0u), p.hash_mode) & p.mask;
    // The table is at most half full, so an empty slot is always found.
    loop {
        let claim = atomicCompareExchangeWeak(&table[slot], 0u, 1u);
        if (claim.exchanged) {
            let at = p.mask + 1u + 4u * slot;
            atomicStore(&table[at], lo);
            atomicStore(&table[at + 1u], hi);
            atomicStore(&table[at + 2u], entries[4u * i + 2u]);
            atomicStore(&table[at + 3u], entries[4u * i + 3u]);
            return;
        }
        if (claim.old_value != 0u) {
            slot = (slot + 1u) & p.mask;
        }
        // A weak exchange may fail spuriously on an empty slot: try the same slot again.
    }
}
