// Shared by every window pass: pass parameters, the item-state encoding, hashing and 64-bit
// helpers on (lo, hi) u32 pairs. Every shader uses 32-bit integers only, so the kernels run on
// any WebGPU adapter (no SHADER_INT64, no float atomics).

// 256 invocations per workgroup: the common default for memory-bound hash kernels; tune on
// real hardware before changing (see docs/gpu.md).
const WG: u32 = 256u;

// item_slot encoding: the low 28 bits hold a table slot; the high bits say which passes have
// consumed the item, so a retried round never applies an item twice.
const SKIP: u32 = 0xFFFFFFFFu;       // the item's window has fired or does not exist
const SLOT_MASK: u32 = 0x0FFFFFFFu;
const UNRESOLVED: u32 = 0x0FFFFFFFu; // no slot yet: retry in a later pass
const DONE_UPDATE: u32 = 0x80000000u;
const DONE_LO: u32 = 0x40000000u;
const DONE_DISTINCT: u32 = 0x20000000u;
const CLOSED: u32 = 0xFFFFFFFFu;     // slot_map: the group's window fired

// counters[]: written by the passes, read back in the status of each round.
const C_OCCUPIED: u32 = 0u;     // claimed slots of the group table
const C_UNRESOLVED: u32 = 1u;   // items left unresolved by the last pass of a round
const C_FULL: u32 = 2u;         // the group table reached its load limit
const C_DOCCUPIED: u32 = 3u;    // claimed entries of the distinct-value table
const C_DFULL: u32 = 4u;        // the distinct-value table reached its load limit
const C_RANGE: u32 = 5u;        // a float sum input was beyond the exact accumulator's range
const C_OUT: u32 = 6u;          // rows written by window_fire or session_fire
const C_LATE: u32 = 7u;         // late rows found by session_late
const COUNTERS: u32 = 8u;       // words in counters[]

// Aggregate operations (AggregateOp in engine/src/backend/gpu/plan.rs).
const OP_COUNT_ROWS: u32 = 0u;
const OP_COUNT: u32 = 1u;
const OP_SUM_INT: u32 = 2u;
const OP_SUM_FLOAT: u32 = 3u;
const OP_MIN_INT: u32 = 4u;
const OP_MAX_INT: u32 = 5u;
const OP_MIN_FLOAT: u32 = 6u;
const OP_MAX_FLOAT: u32 = 7u;
const OP_DISTINCT_INT: u32 = 8u;
const OP_DISTINCT_FLOAT: u32 = 9u;

// Float sums: 256-bit fixed point, value * 2^112, separate positive and negative words.
// Every field starts at an even word so the 64-bit kernel can address it as one u64.
const FX_WORDS: u32 = 8u;
const FX_FLAGS: u32 = 16u;  // word offset of the non-finite flags (and a pad word)
const FX_COUNT: u32 = 18u;  // word offset of the 64-bit count
const F_NAN: u32 = 1u;
const F_PINF: u32 = 2u;
const F_NINF: u32 = 4u;

struct Pass {
    rows: u32,
    items: u32,
    per_row: u32,
    uneven: u32,
    mask: u32,
    limit: u32,
    dmask: u32,
    dlimit: u32,
    tag: u32,
    first: u32,
    last: u32,
    hash_mode: u32,
    min_open_lo: u32,
    min_open_hi: u32,
    stride: u32,
    n_aggs: u32,
    keys_at: u32,
    wins_at: u32,
    counts_at: u32,
    new_mask: u32,
    close: u32,
    identity: u32,
    // Bit 0: key ids are 32-bit words; bit 1: window indices are 32-bit offsets from wbase.
    narrow: u32,
    wbase_lo: u32,
    wbase_hi: u32,
    // Session windows: the gap, and the accumulator word of the bucket's min event time (its
    // max follows 4 words later).
    gap_lo: u32,
    gap_hi: u32,
    ts_at: u32,
}

struct AggDesc {
    op: u32,
    values_at: u32,
    // Word offset of the validity bitmap in the batch buffer, or 0xFFFFFFFF when all valid.
    valid_at: u32,
    acc_at: u32,
    // 1: the column is uploaded as 32-bit signed integers (every value of the batch fits).
    narrow: u32,
}

// The linear invocation index of a 2-D grid (the x dimension is capped at 65535 workgroups).
fn linear_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.y * groups.x * WG + gid.x;
}

// MurmurHash3's 32-bit finaliser: cheap and mixes every input bit into every output bit.
fn fmix(x: u32) -> u32 {
    var h = x;
    h ^= h >> 16u;
    h *= 0x85ebca6bu;
    h ^= h >> 13u;
    h *= 0xc2b2ae35u;
    h ^= h >> 16u;
    return h;
}

fn hash4(k: vec4<u32>, mode: u32) -> u32 {
    if (mode == 1u) {
        return 0u; // test mode: every key collides
    }
    var h = fmix(k.x ^ 0x9e3779b9u);
    h = fmix(h ^ k.y);
    h = fmix(h ^ k.z);
    return fmix(h ^ k.w);
}

// A 24-bit fingerprint: a slot whose fingerprint differs is skipped without reading its key.
fn fingerprint(h: u32, mode: u32) -> u32 {
    if (mode == 1u) {
        return 0u;
    }
    return fmix(h + 0x27d4eb2fu) >> 8u;
}

// Signed 64-bit a < b on (lo, hi) pairs.
fn lt64s(a: vec2<u32>, b: vec2<u32>) -> bool {
    let ah = bitcast<i32>(a.y);
    let bh = bitcast<i32>(b.y);
    return ah < bh || (ah == bh && a.x < b.x);
}

fn add64_small(a: vec2<u32>, j: u32) -> vec2<u32> {
    let lo = a.x + j;
    let carry = select(0u, 1u, lo < j);
    return vec2<u32>(lo, a.y + carry);
}

fn sub64_small(a: vec2<u32>, j: u32) -> vec2<u32> {
    let lo = a.x - j;
    let borrow = select(0u, 1u, a.x < j);
    return vec2<u32>(lo, a.y - borrow);
}

// Maps a 64-bit value to an unsigned key with the same order: two's complement integers flip
// the sign bit; floats use IEEE total order with every NaN made the one positive quiet NaN
// (so NaN sorts above +inf, and -0.0 below 0.0), exactly as the CPU backend compares.
fn order_key(v: vec2<u32>, is_float: bool) -> vec2<u32> {
    if (!is_float) {
        return vec2<u32>(v.x, v.y ^ 0x80000000u);
    }
    var lo = v.x;
    var hi = v.y;
    if ((hi & 0x7FF00000u) == 0x7FF00000u && ((hi & 0xFFFFFu) | lo) != 0u) {
        lo = 0u;
        hi = 0x7FF80000u;
    }
    if ((hi & 0x80000000u) != 0u) {
        return vec2<u32>(~lo, ~hi);
    }
    return vec2<u32>(lo, hi | 0x80000000u);
}

// The bits that identify a value for count_distinct: -0.0 equals 0.0, every NaN is one value.
fn distinct_bits(v: vec2<u32>, is_float: bool) -> vec2<u32> {
    if (!is_float) {
        return v;
    }
    if ((v.y & 0x7FFFFFFFu) == 0u && v.x == 0u) {
        return vec2<u32>(0u, 0u);
    }
    if ((v.y & 0x7FF00000u) == 0x7FF00000u && ((v.y & 0xFFFFFu) | v.x) != 0u) {
        return vec2<u32>(0u, 0x7FF80000u);
    }
    return v;
}
