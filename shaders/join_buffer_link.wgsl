// Stream-join buffer, link: for each distinct key of a batch, finds or claims the key's index
// slot, makes the batch's newest row of the key the chain's head and hangs the key's older
// chain below the batch's oldest row of the key. Keys are distinct within a pass, so no two
// invocations touch one chain; a slot claimed in this pass (state p.tag) holds another key
// and is passed without reading its key words, which may not be written yet.
// p.items: distinct keys of the batch; p.mask: index capacity - 1; p.tag: this pass's tag.

@group(0) @binding(0) var<uniform> p: Pass;
// Per batch key: id lo, id hi, its oldest row of the batch, its newest.
@group(0) @binding(1) var<storage, read> keys: array<u32>;
// Per new row: its slot (join_buffer_insert wrote them).
@group(0) @binding(2) var<storage, read> slots: array<u32>;
@group(0) @binding(3) var<storage, read_write> entries: array<u32>;
@group(0) @binding(4) var<storage, read_write> index: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> counters: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_id(gid, groups);
    if (i >= p.items) {
        return;
    }
    let lo = keys[4u * i];
    let hi = keys[4u * i + 1u];
    var slot = hash4(vec4<u32>(lo, hi, 0u, 0u), p.hash_mode) & p.mask;
    var older = NONE;
    // The host keeps the index at most half full, so the key or an empty slot is found.
    loop {
        var state = atomicLoad(&index[slot]);
        if (state == 0u) {
            let claim = atomicCompareExchangeWeak(&index[slot], 0u, p.tag);
            if (claim.exchanged) {
                atomicStore(&index[key_at(slot)], lo);
                atomicStore(&index[key_at(slot) + 1u], hi);
                atomicAdd(&counters[J_CLAIMED], 1u);
                break;
            }
            if (claim.old_value == 0u) {
                continue; // a weak exchange may fail spuriously: try the same slot again
            }
            state = claim.old_value;
        }
        if (state != p.tag && atomicLoad(&index[key_at(slot)]) == lo
            && atomicLoad(&index[key_at(slot) + 1u]) == hi) {
            older = atomicLoad(&index[key_at(slot) + 2u]);
            break;
        }
        slot = (slot + 1u) & p.mask;
    }
    atomicStore(&index[key_at(slot) + 2u], slots[keys[4u * i + 3u]]);
    entries[ENTRY * slots[keys[4u * i + 2u]] + E_OLDER] = older;
}
