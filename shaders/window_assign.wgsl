// Finds (or claims) the group-table slot of every (row, window) item of a micro-batch.
//
// Item `row * per_row + j` is the row's j-th most recent window, index `w_last - j`. The group
// key is (key id, window index), four words; its slot comes from open addressing with linear
// probing. A slot is claimed by compare-exchange of its state word from 0 to
// `fingerprint << 8 | tag`, where `tag` names this pass. Keys written in this same pass may not
// be visible yet (WGSL atomics are relaxed), so an item that meets a slot with its own
// fingerprint claimed in this pass defers to the next pass instead of spinning: no invocation
// ever waits on another, which WebGPU does not promise to make progress.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> batch: array<u32>;
// [state words: capacity][keys: 4 words per slot]
@group(0) @binding(2) var<storage, read_write> table: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> item_slot: array<u32>;
@group(0) @binding(5) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read> aggs: array<AggDesc>;

fn defer_item(item: u32) {
    item_slot[item] = UNRESOLVED;
    if (p.last == 1u) {
        atomicAdd(&counters[C_UNRESOLVED], 1u);
    }
}

fn keys_equal(s: u32, k: vec4<u32>) -> bool {
    let at = p.mask + 1u + 4u * s;
    return atomicLoad(&table[at]) == k.x && atomicLoad(&table[at + 1u]) == k.y
        && atomicLoad(&table[at + 2u]) == k.z && atomicLoad(&table[at + 3u]) == k.w;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let item = linear_id(gid, groups);
    if (item >= p.items) {
        return;
    }
    if (p.first == 0u && item_slot[item] != UNRESOLVED) {
        return;
    }
    let row = item / p.per_row;
    let j = item % p.per_row;
    if (p.uneven == 1u && j >= batch[p.counts_at + row]) {
        item_slot[item] = SKIP;
        return;
    }
    let w = sub64_small(batch_window(row), j);
    if (lt64s(w, vec2<u32>(p.min_open_lo, p.min_open_hi))) {
        item_slot[item] = SKIP; // that window has fired: the row is late for it
        return;
    }
    let key = batch_key(row);
    let k = vec4<u32>(key.x, key.y, w.x, w.y);
    let h = hash4(k, p.hash_mode);
    let fp = fingerprint(h, p.hash_mode);
    let mine = (fp << 8u) | p.tag;
    // A table at its limit defers everything at once: no item scans a full table for a slot.
    if (atomicLoad(&counters[C_OCCUPIED]) >= p.limit) {
        atomicStore(&counters[C_FULL], 1u);
        defer_item(item);
        return;
    }
    var s = h & p.mask;
    var probes = 0u;
    loop {
        if (probes > p.mask) {
            atomicStore(&counters[C_FULL], 1u);
            defer_item(item);
            return;
        }
        var st = atomicLoad(&table[s]);
        if (st == 0u) {
            if (atomicLoad(&counters[C_OCCUPIED]) >= p.limit) {
                atomicStore(&counters[C_FULL], 1u);
                defer_item(item);
                return;
            }
            let r = atomicCompareExchangeWeak(&table[s], 0u, mine);
            if (r.exchanged) {
                atomicAdd(&counters[C_OCCUPIED], 1u);
                let at = p.mask + 1u + 4u * s;
                atomicStore(&table[at], k.x);
                atomicStore(&table[at + 1u], k.y);
                atomicStore(&table[at + 2u], k.z);
                atomicStore(&table[at + 3u], k.w);
                acc_init(s * p.stride);
                item_slot[item] = s;
                return;
            }
            if (r.old_value == 0u) {
                continue; // a weak compare-exchange may fail spuriously: try the slot again
            }
            st = r.old_value;
        }
        if ((st >> 8u) == fp) {
            if ((st & 0xFFu) == p.tag) {
                defer_item(item);
                return;
            }
            if (keys_equal(s, k)) {
                item_slot[item] = s;
                return;
            }
        }
        s = (s + 1u) & p.mask;
        probes += 1u;
    }
}
