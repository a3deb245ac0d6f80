//! Random tokens and mutations of real scripts: parsing never panics, and every error points
//! inside the text.

use sluice_engine::expr::Expr;

use super::parse_script;

/// Scripts and expressions to mutate: the forms users write most.
const SEEDS: [&str; 5] = [
    "CREATE TEMPORARY TABLE txns (\n  card_id BIGINT NOT NULL,\n  ts TIMESTAMP(3),\n  \
     eur AS amount_cents / 100.0,\n  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND\n) \
     WITH ('connector' = 'transactions', 'number-of-rows' = '1000');",
    "INSERT INTO out\nSELECT card_id, window_start, window_end, COUNT(*) AS n,\n  \
     SUM(amount_cents) FILTER (WHERE channel = 'online')\nFROM TABLE(HOP(TABLE txns, \
     DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '1' MINUTE))\nGROUP BY card_id, \
     window_start, window_end;",
    "SELECT * FROM TABLE(SESSION(TABLE clicks PARTITION BY (user_id, page), DESCRIPTOR(ts), \
     INTERVAL '5' MINUTES)); SET 'execution.checkpointing.interval' = '10 s';",
    "SELECT o.id, r.rate FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.proc_time AS r \
     ON o.currency = r.currency WHERE o.amount * r.rate > 100 -- big ones\n;",
    "amount_cents * 1.1 > 100 and lower(country) = 'fr' or \"odd name\" is not null \
     and cast(ts as timestamp) >= 1700000000000 and substr(s, 1, 2) || `x` <> 'ab'",
];

/// Fragments inserted at random: the tokens most likely to confuse a parser.
const FRAGMENTS: [&str; 24] = [
    "(",
    ")",
    ",",
    ";",
    "'",
    "\"",
    "`",
    "--",
    "/*",
    "*/",
    "TABLE",
    "WATERMARK",
    "FOR",
    "AS",
    "SELECT",
    "INTERVAL",
    "NOT",
    "NULL",
    "-",
    "||",
    "\n",
    "é",
    "9223372036854775808",
    "(((",
];

/// A small deterministic generator (xorshift64*), so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `text` changed once: a slice dropped, repeated or swapped for a fragment.
fn mutate(text: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len() + 1);
    let end = (at + rng.below(12)).min(chars.len());
    let (before, rest) = chars.split_at(at);
    let (middle, after) = rest.split_at(end - at);
    let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
    let middle: String = match rng.below(3) {
        0 => String::new(),
        1 => middle.iter().chain(middle).collect(),
        _ => fragment.to_string(),
    };
    before
        .iter()
        .copied()
        .chain(middle.chars())
        .chain(after.iter().copied())
        .collect()
}

/// Asserts that `line:column` is a place in `text` (or just past its end).
fn assert_inside(text: &str, line: u64, column: u64) {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(source) = lines.get(line as usize - 1) else {
        panic!("line {line} is past the {} lines of {text:?}", lines.len());
    };
    assert!(
        column as usize <= source.chars().count() + 1,
        "column {column} is past line {line} ({source:?}) of {text:?}"
    );
}

#[test]
fn mutated_and_random_text_never_panics_and_errors_point_inside_it() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut scripts_refused, mut scripts_read) = (0, 0);
    for round in 0..3_000 {
        let text = if round % 4 == 3 {
            (0..rng.below(20))
                .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            let mut text = SEEDS[rng.below(SEEDS.len())].to_string();
            for _ in 0..=rng.below(3) {
                text = mutate(&text, &mut rng);
            }
            text
        };
        match parse_script(&text) {
            Err(err) => {
                scripts_refused += 1;
                assert_inside(&text, err.line, err.column);
            }
            Ok(_) => scripts_read += 1,
        }
        if let Some((line, column)) = Expr::parse(&text).err().and_then(|err| err.place()) {
            assert_inside(&text, line as u64, column as u64);
        }
    }
    // The mutations must exercise both paths, or the test checks little.
    assert!(
        scripts_refused > 1_000 && scripts_read > 100,
        "{scripts_refused} refused, {scripts_read} read"
    );
}
