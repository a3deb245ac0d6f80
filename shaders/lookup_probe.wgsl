// Lookup join, probe: finds each stream row's key id in the table lookup_build filled and
// writes its range of build rows (first, count); count 0 when the id is absent or the row's
// key cannot match (a null). The host expands ranges into (stream row, table row) pairs.
// p.rows: stream rows; p.mask: table capacity - 1.

@group(0) @binding(0) var<uniform> p: Pass;
// Per stream row: id lo, id hi, 1 when the key can match.
@group(0) @binding(1) var<storage, read> probe: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
// Per stream row: first build row, build rows.
@group(0) @binding(3) var<storage, read_write> ranges: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let r = linear_id(gid, groups);
    if (r >= p.rows) {
        return;
    }
    ranges[2u * r] = 0u;
    ranges[2u * r + 1u] = 0u;
    if (probe[3u * r + 2u] == 0u) {
        return;
    }
    let lo = probe[3u * r];
    let hi = probe[3u * r + 1u];
    var slot = hash4(vec4<u32>(lo, hi, 0u, 0u), p.hash_mode) & p.mask;
    loop {
        if (table[slot] == 0u) {
            return;
        }
        let at = p.mask + 1u + 4u * slot;
        if (table[at] == lo && table[at + 1u] == hi) {
            ranges[2u * r] = table[at + 2u];
            ranges[2u * r + 1u] = table[at + 3u];
            return;
        }
        slot = (slot + 1u) & p.mask;
    }
}
