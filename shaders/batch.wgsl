// Reads one micro-batch from the `batch` buffer: 64-bit values as (lo, hi) word pairs at
// per-column word offsets, or one word per row where the host found every value of the batch
// fits 32 bits (key ids below 2^32, window indices within 2^32 of `wbase`, integer inputs in
// i32 range); validity as Arrow-style bitmaps (bit i of word i / 32).
// Included by passes that declare `batch` and the pass parameters `p`.

fn batch_pair(at: u32, row: u32) -> vec2<u32> {
    return vec2<u32>(batch[at + 2u * row], batch[at + 2u * row + 1u]);
}

// The key id of `row`.
fn batch_key(row: u32) -> vec2<u32> {
    if ((p.narrow & 1u) != 0u) {
        return vec2<u32>(batch[p.keys_at + row], 0u);
    }
    return batch_pair(p.keys_at, row);
}

// The newest window index of `row`.
fn batch_window(row: u32) -> vec2<u32> {
    if ((p.narrow & 2u) != 0u) {
        return add64_small(vec2<u32>(p.wbase_lo, p.wbase_hi), batch[p.wins_at + row]);
    }
    return batch_pair(p.wins_at, row);
}

// The 64-bit input value of aggregate `d` at `row` (a narrow column sign-extended).
fn batch_value(d: AggDesc, row: u32) -> vec2<u32> {
    if (d.narrow == 1u) {
        let lo = batch[d.values_at + row];
        return vec2<u32>(lo, select(0u, 0xFFFFFFFFu, (lo >> 31u) == 1u));
    }
    return batch_pair(d.values_at, row);
}

fn is_valid(d: AggDesc, row: u32) -> bool {
    if (d.valid_at == 0xFFFFFFFFu) {
        return true;
    }
    return ((batch[d.valid_at + row / 32u] >> (row % 32u)) & 1u) == 1u;
}
