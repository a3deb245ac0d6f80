// count_distinct of closing sessions: one invocation per distinct-value entry (bucket slot,
// aggregate, value). An entry whose bucket belongs to a closing session counts once for that
// session, unless an earlier bucket of the same session holds the same value (found by
// walking the run backwards), so each session counts the union of its buckets' values.
// Runs after session_fire (which wrote `session_rows` and zeroed the counts) and before the
// tables are rebuilt.

@group(0) @binding(0) var<uniform> p: Pass;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> acc: array<u32>;
@group(0) @binding(3) var<storage, read> dtable: array<u32>;
@group(0) @binding(4) var<storage, read> session_rows: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read> aggs: array<AggDesc>;

// Whether the distinct-value table holds `k` (it is not being written).
fn dfind(k: vec4<u32>) -> bool {
    let h = hash4(k, p.hash_mode);
    let fp = fingerprint(h, p.hash_mode);
    var e = h & p.dmask;
    for (var probes = 0u; probes <= p.dmask; probes++) {
        let st = dtable[e];
        if (st == 0u) {
            return false;
        }
        let at = p.dmask + 1u + 4u * e;
        if ((st >> 8u) == fp && dtable[at] == k.x && dtable[at + 1u] == k.y
            && dtable[at + 2u] == k.z && dtable[at + 3u] == k.w) {
            return true;
        }
        e = (e + 1u) & p.dmask;
    }
    return false;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = linear_id(gid, groups);
    if (e > p.dmask || dtable[e] == 0u) {
        return;
    }
    let at = p.dmask + 1u + 4u * e;
    let k = vec4<u32>(dtable[at], dtable[at + 1u], dtable[at + 2u], dtable[at + 3u]);
    let row = session_rows[k.x];
    if (row == NONE) {
        return;
    }
    var cur = k.x;
    loop {
        let prev = find(neighbour(key_of(cur), false));
        if (prev == NONE || !connected(prev, cur)) {
            break;
        }
        if (dfind(vec4<u32>(prev, k.y, k.z, k.w))) {
            return; // an earlier bucket of the session counts this value
        }
        cur = prev;
    }
    let count_at = row * (6u + p.stride) + 6u + aggs[k.y].acc_at;
    let old = atomicAdd(&out[count_at], 1u);
    if (old == 0xFFFFFFFFu) {
        atomicAdd(&out[count_at + 1u], 1u);
    }
}
