// Stream-join buffer, probe: walks each probe row's key chain twice, first counting the rows
// whose event time lies in the probe row's range, then, after taking that many places of the
// match buffer with one atomic add, writing their handles. The chain runs from newest to
// oldest, so handles are written from the end of the row's places backwards: ascending.
// When the places run out (p.limit), rows still report their counts and write nothing; the
// host sums the counts, grows the buffer and probes again.
// p.rows: probe rows; p.mask: index capacity - 1; p.limit: places in `matches`; p.last: the
// slab's length (no chain is longer).

@group(0) @binding(0) var<uniform> p: Pass;
// Per probe row: id lo, id hi, range start lo, hi, range end lo, hi.
@group(0) @binding(1) var<storage, read> probe: array<u32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read> entries: array<u32>;
// Per probe row: its first place in `matches`, its match count.
@group(0) @binding(4) var<storage, read_write> found: array<u32>;
// Per place: handle lo, hi.
@group(0) @binding(5) var<storage, read_write> matches: array<u32>;
@group(0) @binding(6) var<storage, read_write> counters: array<atomic<u32>>;

fn entry_ts(slot: u32) -> vec2<u32> {
    return vec2<u32>(entries[ENTRY * slot + E_TS], entries[ENTRY * slot + E_TS + 1u]);
}

// The newest slot of key (lo, hi), or NONE.
fn newest(lo: u32, hi: u32) -> u32 {
    var slot = hash4(vec4<u32>(lo, hi, 0u, 0u), p.hash_mode) & p.mask;
    for (var probes = 0u; probes <= p.mask; probes++) {
        if (index[slot] == 0u) {
            return NONE;
        }
        if (index[key_at(slot)] == lo && index[key_at(slot) + 1u] == hi) {
            return index[key_at(slot) + 2u];
        }
        slot = (slot + 1u) & p.mask;
    }
    return NONE;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = linear_id(gid, groups);
    if (r >= p.rows) {
        return;
    }
    found[2u * r] = 0u;
    found[2u * r + 1u] = 0u;
    let lo_ts = vec2<u32>(probe[6u * r + 2u], probe[6u * r + 3u]);
    let hi_ts = vec2<u32>(probe[6u * r + 4u], probe[6u * r + 5u]);
    if (lt64s(hi_ts, lo_ts)) {
        return;
    }
    let head = newest(probe[6u * r], probe[6u * r + 1u]);
    var count = 0u;
    var slot = head;
    for (var steps = 0u; slot != NONE && steps < p.last; steps++) {
        if (within(entry_ts(slot), lo_ts, hi_ts)) {
            count += 1u;
        }
        slot = entries[ENTRY * slot + E_OLDER];
    }
    if (count == 0u) {
        return;
    }
    let first = atomicAdd(&counters[J_MATCHES], count);
    found[2u * r] = first;
    found[2u * r + 1u] = count;
    if (count > p.limit || first > p.limit - count) {
        return;
    }
    var place = first + count;
    slot = head;
    for (var steps = 0u; slot != NONE && place > first && steps < p.last; steps++) {
        if (within(entry_ts(slot), lo_ts, hi_ts)) {
            place -= 1u;
            matches[2u * place] = entries[ENTRY * slot + E_HANDLE];
            matches[2u * place + 1u] = entries[ENTRY * slot + E_HANDLE + 1u];
        }
        slot = entries[ENTRY * slot + E_OLDER];
    }
}
