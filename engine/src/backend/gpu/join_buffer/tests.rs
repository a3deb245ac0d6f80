//! GpuJoinBuffer against CpuJoinBuffer and hand-checked answers: random insert, probe and
//! expire sequences (skew, growth, retries, colliding keys), edge cases, bounded memory.

use super::*;
use crate::backend::GpuBackend;
use crate::backend::cpu::CpuJoinBuffer;
use crate::backend::test_support::Rng;

/// One call, made on both buffers.
enum Step {
    Insert(Vec<u64>, Vec<i64>),
    Probe(Vec<u64>, Vec<i64>, Vec<i64>),
    Expire(i64),
}

/// A random stream: per round an insert, a probe of ranges around the clock and an expiry
/// `retain` ms behind it.
#[derive(Clone, Copy, Debug)]
struct Stream {
    rounds: usize,
    /// Most rows per insert and per probe (each picks a size up to it, 0 included).
    batch: u64,
    keys: u64,
    /// Percent of rows on key 0.
    hot: u64,
    /// Clock advance per round, how far rows run behind it, probe width, retention (ms).
    step: i64,
    disorder: i64,
    width: i64,
    retain: i64,
}

fn stream(s: Stream, seed: u64) -> Vec<Step> {
    let mut rng = Rng(seed | 1);
    let mut steps = Vec::new();
    let mut clock = -(s.step * s.rounds as i64) / 2; // negative times too
    let mut bound = i64::MIN;
    let id = |rng: &mut Rng| {
        if rng.below(100) < s.hot {
            0
        } else {
            rng.below(s.keys).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        }
    };
    for _ in 0..s.rounds {
        let n = rng.below(s.batch + 1) as usize;
        let ids: Vec<u64> = (0..n).map(|_| id(&mut rng)).collect();
        let ts: Vec<i64> = (0..n)
            .map(|_| clock - rng.below(s.disorder as u64 + 1) as i64)
            .collect();
        steps.push(Step::Insert(ids, ts));
        let n = rng.below(s.batch + 1) as usize;
        let ids: Vec<u64> = (0..n).map(|_| id(&mut rng)).collect();
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for i in 0..n {
            let at = clock - rng.below(s.disorder as u64 + 1) as i64;
            let (a, b) = if i % 11 == 3 {
                (at, at - 1) // an empty range
            } else {
                (at - rng.below(s.width as u64 + 1) as i64, at + s.width)
            };
            // Probes never ask below the expiry bound (the trait's promise).
            lo.push(a.max(bound));
            hi.push(b);
        }
        steps.push(Step::Probe(ids, lo, hi));
        bound = bound.max(clock - s.retain);
        steps.push(Step::Expire(clock - s.retain));
        clock += s.step;
    }
    steps
}

/// Every buffered pair by brute force over every row inserted: an oracle independent of
/// both buffers (rows below the bound can never match a probe that keeps the promise).
fn brute(rows: &[(u64, i64)], ids: &[u64], lo: &[i64], hi: &[i64]) -> BufferMatches {
    let mut out = BufferMatches::default();
    for (p, ((&id, &lo), &hi)) in ids.iter().zip(lo).zip(hi).enumerate() {
        for (handle, &(row_id, ts)) in rows.iter().enumerate() {
            if row_id == id && lo <= ts && ts <= hi {
                out.probe.push(p as u32);
                out.handles.push(handle as u64);
            }
        }
    }
    out
}

/// Replays `steps` on a fresh CPU buffer and on `gpu`; fails at the first difference.
fn replay(gpu: &mut GpuJoinBuffer, steps: &[Step], what: &str) -> Result<usize> {
    let mut cpu = CpuJoinBuffer::new(100, None);
    let mut inserted: Vec<(u64, i64)> = Vec::new();
    let mut pairs = 0;
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Insert(ids, ts) => {
                cpu.insert(ids, ts)?;
                gpu.insert(ids, ts)?;
                inserted.extend(ids.iter().copied().zip(ts.iter().copied()));
            }
            Step::Probe(ids, lo, hi) => {
                let probe = JoinProbe { ids, lo, hi };
                let want = cpu.probe(&probe)?;
                let got = gpu.probe(&probe)?;
                assert!(
                    got == want,
                    "{what}, step {i}: the GPU found {} pairs, the CPU {}",
                    got.len(),
                    want.len()
                );
                if inserted.len() * ids.len() <= 4_000_000 {
                    assert_eq!(got, brute(&inserted, ids, lo, hi), "{what}, step {i}");
                }
                pairs += got.len();
            }
            Step::Expire(t) => {
                cpu.expire(*t)?;
                gpu.expire(*t)?;
            }
        }
        assert_eq!(gpu.next_handle(), cpu.next_handle(), "{what}, step {i}");
    }
    Ok(pairs)
}

/// The buffers the cases run on: as jobs get them, unlinking at every expiry (also cut
/// into small rounds, and with every key hashing alike: small cases only).
fn variants(gpu: &GpuBackend, small: bool) -> Vec<(&'static str, GpuJoinBuffer)> {
    let buffer =
        |backend: &GpuBackend| GpuJoinBuffer::new(Arc::clone(&backend.context), backend.tuning);
    let mut eager = buffer(gpu);
    eager.unlink_slack = 0;
    let mut rounds = buffer(&gpu.clone().with_chunk_rows(100));
    rounds.unlink_slack = 0;
    let mut all = vec![
        ("default", buffer(gpu)),
        ("eager unlinking", eager),
        ("rounds of 100 rows, eager unlinking", rounds),
    ];
    if small {
        let mut colliding = buffer(&gpu.clone().with_colliding_hashes());
        colliding.unlink_slack = 0;
        all.push(("colliding hashes", colliding));
    }
    all
}

#[test]
fn the_gpu_buffer_finds_the_same_pairs_as_the_cpu() -> Result<()> {
    let Some(gpu) = GpuBackend::for_tests() else {
        return Ok(());
    };
    let base = Stream {
        rounds: 12,
        batch: 300,
        keys: 40,
        hot: 0,
        step: 100,
        disorder: 300,
        width: 150,
        retain: 600,
    };
    let cases = [
        (
            "many to many",
            Stream {
                keys: 3,
                width: 400,
                ..base
            },
            true,
        ),
        (
            "one hot key",
            Stream {
                keys: 500,
                hot: 90,
                batch: 700,
                ..base
            },
            true,
        ),
        (
            "sparse keys",
            Stream {
                keys: 100_000,
                ..base
            },
            true,
        ),
        // Past the first slab (1,024 rows) and index (64 keys), with little expiring.
        (
            "growth",
            Stream {
                rounds: 8,
                batch: 3_000,
                keys: 2_000,
                retain: 10_000,
                ..base
            },
            false,
        ),
        (
            "one row at a time",
            Stream {
                rounds: 40,
                batch: 1,
                keys: 2,
                ..base
            },
            true,
        ),
    ];
    for (seed, (name, stream_of, small)) in cases.into_iter().enumerate() {
        let steps = stream(stream_of, seed as u64 + 7);
        for (variant, mut buffer) in variants(&gpu, small) {
            let what = format!("{name}, {variant}");
            let pairs = replay(&mut buffer, &steps, &what)?;
            assert!(pairs > 0, "{what}: the case finds no pairs");
            // The cases reach the paths they are for.
            if variant != "default" {
                assert!(buffer.unlinked_at > i64::MIN, "{what}: never unlinked");
            }
            if name == "growth" {
                assert!(
                    buffer.slab.capacity > FIRST_SLOTS,
                    "{what}: slab never grew"
                );
                assert!(
                    buffer.index.capacity > FIRST_KEYS,
                    "{what}: index never grew"
                );
            }
            if name == "many to many" {
                assert!(buffer.matches.bytes > FIRST_PLACES * 8, "{what}: no retry");
            }
        }
    }
    Ok(())
}

#[test]
fn edge_cases_match_the_cpu_and_hand_checked_answers() -> Result<()> {
    let Some(gpu) = GpuBackend::for_tests() else {
        return Ok(());
    };
    let (min, max) = (i64::MIN, i64::MAX);
    let full = |ids: Vec<u64>| {
        let n = ids.len();
        Step::Probe(ids, vec![min; n], vec![max; n])
    };
    let steps = vec![
        // An empty buffer, an empty probe, an empty insert.
        full(vec![1, 2]),
        Step::Probe(vec![], vec![], vec![]),
        Step::Insert(vec![], vec![]),
        full(vec![1]),
        // One row, then the extremes of both words and of time.
        Step::Insert(vec![5], vec![0]),
        Step::Probe(vec![5, 5, 5, 5], vec![0, 1, -1, 0], vec![0, 1, -1, -1]),
        Step::Insert(
            vec![0, u64::MAX, 0, u64::MAX, 0, 1 << 32, 1],
            vec![min, max, -1, min + 1, max - 1, 7, 7],
        ),
        full(vec![0, u64::MAX, 1 << 32, 1, 5, 6]),
        Step::Probe(
            vec![0, 0, u64::MAX, 0, 0, 0],
            vec![min, max, min, -1, 0, max],
            vec![min, max, min + 1, 5, -1, min],
        ),
        Step::Expire(min),
        full(vec![0]),
        Step::Expire(-5),
        Step::Probe(vec![0, u64::MAX], vec![-5, -5], vec![max, max]),
        Step::Expire(max),
        Step::Probe(vec![0, u64::MAX], vec![max, max], vec![max, max]),
        // Handles keep counting after everything expired.
        Step::Insert(vec![0, 0], vec![max, max]),
        Step::Probe(vec![0], vec![max], vec![max]),
    ];
    for (variant, mut buffer) in variants(&gpu, true) {
        replay(&mut buffer, &steps, variant)?;
    }
    // Hand-checked: the CPU buffer's own example.
    let mut buffer = GpuJoinBuffer::new(Arc::clone(&gpu.context), gpu.tuning);
    buffer.insert(&[7, 7, 8, 7, 7], &[5, 25, 6, 12, 9])?;
    let found = buffer.probe(&JoinProbe {
        ids: &[7, 8, 9, 7],
        lo: &[5, 0, 0, 10],
        hi: &[12, 5, 100, 9],
    })?;
    assert_eq!(found.probe, vec![0, 0, 0]);
    assert_eq!(found.handles, vec![0, 3, 4]);
    assert_eq!((buffer.rows(), buffer.next_handle()), (5, 5));
    Ok(())
}

/// A long run with steady expiry: rows held, slab and index stay bounded, though one row
/// far in the future never expires (a ring would stall behind it) and keys keep changing.
#[test]
fn memory_stays_bounded_under_steady_expiry() -> Result<()> {
    let Some(gpu) = GpuBackend::for_tests() else {
        return Ok(());
    };
    let mut buffer = GpuJoinBuffer::new(Arc::clone(&gpu.context), gpu.tuning);
    let mut cpu = CpuJoinBuffer::new(100, None);
    let mut rng = Rng(99);
    let (batch, retain) = (500usize, 2_000i64);
    let mut held: Vec<i64> = Vec::new();
    for round in 0..400i64 {
        let clock = round * 100;
        let ids: Vec<u64> = (0..batch as u64)
            .map(|i| (round as u64 / 5) * 1_000 + rng.below(50) + i % 2)
            .collect();
        let mut ts: Vec<i64> = (0..batch).map(|_| clock - rng.below(300) as i64).collect();
        if round == 0 {
            ts[0] = i64::MAX;
        }
        buffer.insert(&ids, &ts)?;
        cpu.insert(&ids, &ts)?;
        held.extend(&ts);
        let bound = clock - retain;
        buffer.expire(bound)?;
        cpu.expire(bound)?;
        held.retain(|&t| t >= bound);
        let live = held.len();
        assert!(
            buffer.rows() >= live && buffer.rows() <= 2 * live + UNLINK_SLACK + 2 * batch,
            "round {round}: {} rows held, {live} live",
            buffer.rows()
        );
        if round % 25 == 0 {
            let lo: Vec<i64> = ts.iter().map(|&t| (t - 500).max(bound)).collect();
            let hi: Vec<i64> = ts.iter().map(|&t| t.saturating_add(100)).collect();
            let probe = JoinProbe {
                ids: &ids,
                lo: &lo,
                hi: &hi,
            };
            assert_eq!(buffer.probe(&probe)?, cpu.probe(&probe)?, "round {round}");
        }
    }
    // About 10,000 rows and 200 keys live, of 200,000 rows and 4,000 keys inserted: the
    // slab and index stay at the scale of the live ones.
    assert!(
        buffer.slab.capacity <= 1 << 16,
        "slab of {}",
        buffer.slab.capacity
    );
    assert!(
        buffer.index.capacity <= 1 << 12,
        "index of {}",
        buffer.index.capacity
    );
    assert_eq!(buffer.next_handle(), 400 * batch as u64);
    Ok(())
}
