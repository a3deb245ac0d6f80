// Accumulator words of one group: exact 64-bit counts and sums from 32-bit atomics with carry,
// exact float sums in 256-bit fixed point, and their empty state. Included by passes that
// declare `acc` and `aggs`.

// Adds `x` at word `at`, carrying into the following words up to (not including) `end`;
// a carry out of the last word wraps, as 64-bit integer sums wrap on the CPU.
fn acc_add(at: u32, x: u32, end: u32) {
    var w = at;
    var v = x;
    loop {
        if (w >= end || v == 0u) {
            break;
        }
        let old = atomicAdd(&acc[w], v);
        if (old + v >= old) {
            break;
        }
        w += 1u;
        v = 1u;
    }
}

fn acc_add64(at: u32, v: vec2<u32>) {
    acc_add(at, v.x, at + 2u);
    acc_add(at + 1u, v.y, at + 2u);
}

// Adds an f64 (as bits) to a fixed-point sum at `at`: words [at, at+8) hold the positive part,
// [at+8, at+16) the negative part, each as a 256-bit integer of units of 2^-112. Bits below
// 2^-112 are dropped; a finite value of magnitude 2^100 or more sets C_RANGE (the host fails
// the job rather than return a wrong sum); inf and NaN set flags.
fn acc_add_float(at: u32, v: vec2<u32>) {
    let hi = v.y;
    let lo = v.x;
    let exp = (hi >> 20u) & 0x7FFu;
    let negative = (hi >> 31u) == 1u;
    if (exp == 0x7FFu) {
        var flag = F_PINF;
        if (((hi & 0xFFFFFu) | lo) != 0u) {
            flag = F_NAN;
        } else if (negative) {
            flag = F_NINF;
        }
        atomicOr(&acc[at + FX_FLAGS], flag);
        return;
    }
    if (exp == 0u) {
        return; // zero or subnormal: below 2^-1022, far under the 2^-112 resolution
    }
    let m_hi = (hi & 0xFFFFFu) | 0x100000u; // 53-bit mantissa with its leading 1
    // value = m * 2^(exp - 1075); in fixed point m * 2^(exp - 1075 + 112).
    let sh = i32(exp) - 963;
    if (sh + 53 > 212) {
        atomicOr(&counters[C_RANGE], 1u);
        return;
    }
    if (sh <= -53) {
        return;
    }
    var base = at;
    if (negative) {
        base = at + FX_WORDS;
    }
    let end = base + FX_WORDS;
    if (sh < 0) {
        let s = u32(-sh);
        var w0: u32;
        var w1: u32;
        if (s >= 32u) {
            w0 = m_hi >> (s - 32u);
            w1 = 0u;
        } else {
            w0 = (lo >> s) | (m_hi << (32u - s));
            w1 = m_hi >> s;
        }
        acc_add(base, w0, end);
        acc_add(base + 1u, w1, end);
        return;
    }
    let q = u32(sh) / 32u;
    let r = u32(sh) % 32u;
    var w0 = lo;
    var w1 = m_hi;
    var w2 = 0u;
    if (r != 0u) {
        w0 = lo << r;
        w1 = (m_hi << r) | (lo >> (32u - r));
        w2 = m_hi >> (32u - r);
    }
    acc_add(base + q, w0, end);
    if (base + q + 1u < end) {
        acc_add(base + q + 1u, w1, end);
    }
    if (base + q + 2u < end) {
        acc_add(base + q + 2u, w2, end);
    }
}

// Words an operation keeps per group (AggregateOp::words on the host).
fn op_words(op: u32) -> u32 {
    switch op {
        case 2u: { return 4u; }             // sum, count
        case 3u: { return 20u; }            // fixed point +, -, flags, pad, count
        case 4u, 5u, 6u, 7u: { return 4u; } // order key (lo, hi), has-value, pad
        default: { return 2u; }             // a 64-bit count
    }
}

// Writes the empty state of every aggregate of the group at word `base`.
fn acc_init(base: u32) {
    for (var d = 0u; d < p.n_aggs; d++) {
        let desc = aggs[d];
        let at = base + desc.acc_at;
        let words = op_words(desc.op);
        for (var w = 0u; w < words; w++) {
            atomicStore(&acc[at + w], 0u);
        }
        if (desc.op == OP_MIN_INT || desc.op == OP_MIN_FLOAT) {
            atomicStore(&acc[at], 0xFFFFFFFFu);
            atomicStore(&acc[at + 1u], 0xFFFFFFFFu);
        }
    }
}
