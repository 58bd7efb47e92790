//! Next-token choice from logits: greedy at temperature 0, otherwise seeded temperature + top-p.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::backend::SamplingParams;

/// Below this temperature decoding is greedy (and therefore reproducible without a seed).
const GREEDY_BELOW: f32 = 1e-4;

/// A sampler with reusable buffers, one per session.
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    probs: Vec<f32>,
    order: Vec<u32>,
}

impl Sampler {
    /// A sampler for one generation.
    pub fn new(params: SamplingParams) -> Self {
        Self {
            params,
            rng: StdRng::seed_from_u64(params.seed),
            probs: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Chooses the next token from `logits`.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.temperature < GREEDY_BELOW {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.params.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        self.probs.clear();
        self.probs
            .extend(logits.iter().map(|&l| ((l - max) * inv_t).exp()));
        let total: f32 = self.probs.iter().sum();
        if !(total.is_finite() && total > 0.0) {
            return argmax(logits);
        }
        let top_p = self.params.top_p;
        if top_p < 1.0 {
            self.order.clear();
            self.order.extend(0..self.probs.len() as u32);
            let probs = &self.probs;
            self.order.sort_unstable_by(|&a, &b| {
                probs[b as usize]
                    .total_cmp(&probs[a as usize])
                    .then(a.cmp(&b))
            });
            let target = top_p * total;
            let mut mass = 0.0;
            let mut keep = 0;
            for &i in &self.order {
                mass += self.probs[i as usize];
                keep += 1;
                if mass >= target {
                    break;
                }
            }
            let mut pick = self.rng.r#gen::<f32>() * mass;
            for &i in &self.order[..keep] {
                pick -= self.probs[i as usize];
                if pick <= 0.0 {
                    return i;
                }
            }
            return self.order[keep.saturating_sub(1)];
        }
        let mut pick = self.rng.r#gen::<f32>() * total;
        for (i, p) in self.probs.iter().enumerate() {
            pick -= p;
            if pick <= 0.0 {
                return i as u32;
            }
        }
        argmax(logits)
    }
}

/// Index of the largest logit (the first one on ties).
pub(crate) fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_seeded_sampling() {
        let logits = [0.1, 2.0, 1.9, -1.0];
        let mut greedy = Sampler::new(SamplingParams::default());
        assert_eq!(greedy.sample(&logits), 1);
        let params = SamplingParams {
            temperature: 1.5,
            top_p: 1.0,
            seed: 7,
        };
        let draw = |p| {
            (0..64)
                .map(|_| 0)
                .scan(Sampler::new(p), |s, _: i32| Some(s.sample(&logits)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(params), draw(params));
        assert!(
            draw(params)
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        );
        // top_p small enough keeps only the best token.
        let narrow = SamplingParams {
            temperature: 1.0,
            top_p: 0.01,
            seed: 3,
        };
        assert!(draw(narrow).iter().all(|&t| t == 1));
    }
}
