// Shared by the stream-join buffer passes (join_buffer_*.wgsl): how buffered rows and the key
// index are laid out. Every buffered row sits in a slot of `entries`; the rows of one key form
// a chain from its newest row to its oldest, so a chain lists its rows in descending handle
// order. The index maps a key id to its chain's newest slot.

const NONE: u32 = 0xFFFFFFFFu;  // no slot: the end of a chain, or a key without rows

// entries[]: ENTRY words per slot.
const ENTRY: u32 = 5u;
const E_TS: u32 = 0u;      // event time lo, hi
const E_HANDLE: u32 = 2u;  // handle lo, hi
const E_OLDER: u32 = 4u;   // the slot of the key's next older row, or NONE

// index[]: [state: capacity][KEY words per slot: id lo, id hi, newest slot]. State 0 is an
// empty slot, 1 a key that join_buffer_rehash placed, and larger values the tag of the
// join_buffer_link pass that claimed it (so a pass knows the keys it is still writing).
const KEY: u32 = 3u;
const SETTLED: u32 = 1u;

// counters[]
const J_CLAIMED: u32 = 0u;  // claimed slots of the index
const J_LIVE: u32 = 1u;     // rows join_buffer_expire kept
const J_KEYS: u32 = 2u;     // keys with rows after join_buffer_expire
const J_FREED: u32 = 3u;    // slots join_buffer_expire freed
const J_MATCHES: u32 = 4u;  // matches join_buffer_probe allocated

fn key_at(slot: u32) -> u32 {
    return p.mask + 1u + KEY * slot;
}

// Signed 64-bit lo <= t <= hi.
fn within(t: vec2<u32>, lo: vec2<u32>, hi: vec2<u32>) -> bool {
    return !lt64s(t, lo) && !lt64s(hi, t);
}
