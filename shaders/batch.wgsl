// Reads one micro-batch from the `batch` buffer: 64-bit values as (lo, hi) word pairs at
// per-column word offsets, validity as Arrow-style bitmaps (bit i of word i / 32).
// Included by passes that declare `batch`.

fn batch_pair(at: u32, row: u32) -> vec2<u32> {
    return vec2<u32>(batch[at + 2u * row], batch[at + 2u * row + 1u]);
}

fn is_valid(d: AggDesc, row: u32) -> bool {
    if (d.valid_at == 0xFFFFFFFFu) {
        return true;
    }
    return ((batch[d.valid_at + row / 32u] >> (row % 32u)) & 1u) == 1u;
}
