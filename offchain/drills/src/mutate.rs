//! Deterministic input mutation for the stable smoke run: a SplitMix64 PRNG and a mutator that flips
//! bits, overwrites bytes with boundary values, truncates, duplicates, deletes and splices in pieces
//! of other corpus entries. Enough to shake out panics in length and index arithmetic; real coverage-
//! guided fuzzing is `cargo fuzz` (see `fuzz/`).

/// SplitMix64: tiny, seedable, good enough for picking mutations.
#[derive(Debug, Clone)]
pub struct Prng(u64);

impl Prng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Prng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }
}

/// Byte values that tend to hit length and boundary checks.
const INTERESTING: &[u8] = &[0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, b'{', b'[', b'"', b'\\'];

/// Returns a mutated copy of `input`: one to four mutations, some of them splicing from `others`.
pub fn mutate(input: &[u8], others: &[&[u8]], rng: &mut Prng) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(8) {
            0 | 1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 => {
                let keep = rng.below(out.len() + 1);
                out.truncate(keep);
            }
            4 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(16)).min(out.len());
                out.drain(start..end);
            }
            5 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(32)).min(out.len());
                let piece = out[start..end].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, piece);
            }
            6 if !others.is_empty() => {
                let other = others[rng.below(others.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(64)).min(other.len());
                    let at = rng.below(out.len() + 1);
                    let cut = (at + rng.below(64)).min(out.len());
                    out.splice(at..cut, other[start..end].iter().copied());
                }
            }
            _ => {
                // Overwrite a big-endian u16/u32 with a boundary value (lengths, counts, indices).
                if out.len() >= 4 {
                    let i = rng.below(out.len() - 3);
                    let v: u32 = match rng.below(4) {
                        0 => 0,
                        1 => u32::MAX,
                        2 => 0x8000_0000,
                        _ => rng.next_u64() as u32,
                    };
                    out[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_mutations() {
        let input = b"hello mutation world".as_slice();
        let mut a = Prng::new(7);
        let mut b = Prng::new(7);
        for _ in 0..100 {
            assert_eq!(
                mutate(input, &[input], &mut a),
                mutate(input, &[input], &mut b)
            );
        }
        let mut c = Prng::new(8);
        let differs = (0..20).any(|_| mutate(input, &[], &mut a) != mutate(input, &[], &mut c));
        assert!(differs, "different seeds should give different mutations");
    }

    #[test]
    fn handles_empty_input() {
        let mut rng = Prng::new(1);
        for _ in 0..100 {
            let _ = mutate(&[], &[b"x"], &mut rng);
        }
    }
}
