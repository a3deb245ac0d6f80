// count_distinct: inserts (slot, aggregate, value) into the distinct-value table and counts the
// group's value when its entry is new. Claiming follows window_assign (defer, never wait); a
// retried item finds the entries it already inserted, so retries never count a value twice.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> batch: array<u32>;
@group(0) @binding(2) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> item_slot: array<u32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> aggs: array<AggDesc>;
// [state words: capacity][keys: 4 words per entry]
@group(0) @binding(6) var<storage, read_write> dtable: array<atomic<u32>>;

const INSERTED: u32 = 0u;
const DEFERRED: u32 = 1u;

fn dkeys_equal(e: u32, k: vec4<u32>) -> bool {
    let at = p.dmask + 1u + 4u * e;
    return atomicLoad(&dtable[at]) == k.x && atomicLoad(&dtable[at + 1u]) == k.y
        && atomicLoad(&dtable[at + 2u]) == k.z && atomicLoad(&dtable[at + 3u]) == k.w;
}

// Inserts `k`; adds one to the count at word `count_at` when the entry is new.
fn insert(k: vec4<u32>, count_at: u32) -> u32 {
    let h = hash4(k, p.hash_mode);
    let fp = fingerprint(h, p.hash_mode);
    let mine = (fp << 8u) | p.tag;
    if (atomicLoad(&counters[C_DOCCUPIED]) >= p.dlimit) {
        atomicStore(&counters[C_DFULL], 1u);
        return DEFERRED;
    }
    var e = h & p.dmask;
    var probes = 0u;
    loop {
        if (probes > p.dmask) {
            atomicStore(&counters[C_DFULL], 1u);
            return DEFERRED;
        }
        var st = atomicLoad(&dtable[e]);
        if (st == 0u) {
            if (atomicLoad(&counters[C_DOCCUPIED]) >= p.dlimit) {
                atomicStore(&counters[C_DFULL], 1u);
                return DEFERRED;
            }
            let r = atomicCompareExchangeWeak(&dtable[e], 0u, mine);
            if (r.exchanged) {
                atomicAdd(&counters[C_DOCCUPIED], 1u);
                let at = p.dmask + 1u + 4u * e;
                atomicStore(&dtable[at], k.x);
                atomicStore(&dtable[at + 1u], k.y);
                atomicStore(&dtable[at + 2u], k.z);
                atomicStore(&dtable[at + 3u], k.w);
                acc_add(count_at, 1u, count_at + 2u);
                return INSERTED;
            }
            if (r.old_value == 0u) {
                continue;
            }
            st = r.old_value;
        }
        if ((st >> 8u) == fp) {
            if ((st & 0xFFu) == p.tag) {
                return DEFERRED;
            }
            if (dkeys_equal(e, k)) {
                return INSERTED;
            }
        }
        e = (e + 1u) & p.dmask;
        probes += 1u;
    }
    return DEFERRED; // not reached: the loop returns (naga wants a final return)
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let item = linear_id(gid, groups);
    if (item >= p.items) {
        return;
    }
    let state = item_slot[item];
    if (state == SKIP || (state & DONE_UPDATE) == 0u || (state & DONE_DISTINCT) != 0u) {
        return;
    }
    let slot = state & SLOT_MASK;
    let row = item / p.per_row;
    var deferred = false;
    for (var d = 0u; d < p.n_aggs; d++) {
        let desc = aggs[d];
        if ((desc.op != OP_DISTINCT_INT && desc.op != OP_DISTINCT_FLOAT) || !is_valid(desc, row)) {
            continue;
        }
        let v = distinct_bits(batch_value(desc, row), desc.op == OP_DISTINCT_FLOAT);
        if (insert(vec4<u32>(slot, d, v.x, v.y), slot * p.stride + desc.acc_at) == DEFERRED) {
            deferred = true;
        }
    }
    if (deferred) {
        if (p.last == 1u) {
            atomicAdd(&counters[C_UNRESOLVED], 1u);
        }
        return;
    }
    item_slot[item] = state | DONE_DISTINCT;
}
