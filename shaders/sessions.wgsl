// Session windows as runs of buckets. A bucket is (key, floor(ts / gap)), a group of the
// table like a tumbling window of size `gap`, whose accumulators end with the min and max
// event time of its rows (at `ts_at`, as min/max order keys). Two rows in one bucket are less
// than `gap` apart, so they share a session; buckets b and b + 1 share one when the first
// event of b + 1 is at most `gap` after the last of b; buckets further apart never do. A
// session is a maximal run of consecutive connected buckets.
// Included by passes that declare `table` and `acc` read-only.

const NONE: u32 = 0xFFFFFFFFu;
const KEEP: u32 = 0u;

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    let carry = select(0u, 1u, lo < a.x);
    return vec2<u32>(lo, a.y + b.y + carry);
}

// The slot of group `k`, or NONE. The table is not being written, so every entry is settled.
fn find(k: vec4<u32>) -> u32 {
    let h = hash4(k, p.hash_mode);
    let fp = fingerprint(h, p.hash_mode);
    var s = h & p.mask;
    for (var probes = 0u; probes <= p.mask; probes++) {
        let st = table[s];
        if (st == 0u) {
            return NONE;
        }
        let at = p.mask + 1u + 4u * s;
        if ((st >> 8u) == fp && table[at] == k.x && table[at + 1u] == k.y
            && table[at + 2u] == k.z && table[at + 3u] == k.w) {
            return s;
        }
        s = (s + 1u) & p.mask;
    }
    return NONE;
}

fn key_of(s: u32) -> vec4<u32> {
    let at = p.mask + 1u + 4u * s;
    return vec4<u32>(table[at], table[at + 1u], table[at + 2u], table[at + 3u]);
}

// The next (`forward`) or previous bucket of `k`'s key.
fn neighbour(k: vec4<u32>, forward: bool) -> vec4<u32> {
    if (forward) {
        let b = add64_small(k.zw, 1u);
        return vec4<u32>(k.x, k.y, b.x, b.y);
    }
    let b = sub64_small(k.zw, 1u);
    return vec4<u32>(k.x, k.y, b.x, b.y);
}

// The event time an integer min/max order key holds.
fn key_ts(at: u32) -> vec2<u32> {
    return vec2<u32>(acc[at], acc[at + 1u] ^ 0x80000000u);
}

fn first_ts(s: u32) -> vec2<u32> {
    return key_ts(s * p.stride + p.ts_at);
}

fn last_ts(s: u32) -> vec2<u32> {
    return key_ts(s * p.stride + p.ts_at + 4u);
}

fn gap() -> vec2<u32> {
    return vec2<u32>(p.gap_lo, p.gap_hi);
}

// Whether bucket slot `b` (the next bucket of `a`'s key) continues `a`'s session.
fn connected(a: u32, b: u32) -> bool {
    return !lt64s(add64(last_ts(a), gap()), first_ts(b));
}
