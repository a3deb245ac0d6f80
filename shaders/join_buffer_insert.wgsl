// Stream-join buffer, insert: writes each new row of a batch into a slot of `entries`, with its
// event time, its handle and the slot of the batch's previous row of the same key (the host
// found it). A key's first row of the batch gets NONE here; join_buffer_link, the next pass,
// points it at the key's newest older row.
// p.rows: new rows; p.first: free slots in `free`, taken from the top; p.last: the slab's
// length (fresh slots start there); p.wbase_lo/hi: the first new row's handle.

@group(0) @binding(0) var<uniform> p: Pass;
// Per new row: ts lo, ts hi, the batch's previous row of the same key plus one (0: none).
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> free: array<u32>;
@group(0) @binding(3) var<storage, read_write> entries: array<u32>;
// Per new row: its slot (join_buffer_link reads it).
@group(0) @binding(4) var<storage, read_write> slots: array<u32>;

// Row k of the batch takes the k-th free slot from the top of the stack, then fresh slots.
fn slot_of(k: u32) -> u32 {
    if (k < p.first) {
        return free[p.first - 1u - k];
    }
    return p.last + (k - p.first);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let k = linear_id(gid, groups);
    if (k >= p.rows) {
        return;
    }
    let slot = slot_of(k);
    slots[k] = slot;
    let at = ENTRY * slot;
    entries[at + E_TS] = rows[3u * k];
    entries[at + E_TS + 1u] = rows[3u * k + 1u];
    let handle = add64_small(vec2<u32>(p.wbase_lo, p.wbase_hi), k);
    entries[at + E_HANDLE] = handle.x;
    entries[at + E_HANDLE + 1u] = handle.y;
    let previous = rows[3u * k + 2u];
    entries[at + E_OLDER] = select(NONE, slot_of(previous - 1u), previous != 0u);
}
