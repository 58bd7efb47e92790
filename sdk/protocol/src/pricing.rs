//! Prices in integer nanoTON.
//!
//! Rule (documented in docs/protocol.md): for each token class `c`,
//! `adjusted_c = tokens_c × coefficient × multiplier_c` (both factors in thousandths), and
//! `client_cost = floor(Σ_c adjusted_c × price_per_token / 1_000_000)`: one division at the end,
//! rounded down, so the client never pays for a rounding artefact. The worker earns
//! `floor(client_cost × worker_share_bps / 10_000)` and the proxy keeps `client_cost − worker_earning`,
//! so the three always add up exactly. Every step is checked; an overflow is an error, never a wrap.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Thousandths: `1000` means 1.0×.
pub const MILLI: u128 = 1000;
/// Basis points: `10_000` means 100 %.
pub const BPS: u128 = 10_000;

/// A worker's price coefficient in thousandths (`1000` = the network's base price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Coefficient(pub u32);

/// Token counts per price class. The classes are disjoint: `prompt` excludes cached prompt tokens and
/// `completion` excludes reasoning tokens (OpenAI reports them as subsets; [`Usage::from_openai`] splits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens that were not served from a prefix cache.
    pub prompt: u64,
    /// Prompt tokens served from a prefix cache.
    pub cached: u64,
    /// Generated tokens that are not reasoning tokens.
    pub completion: u64,
    /// Generated reasoning tokens.
    pub reasoning: u64,
}

impl Usage {
    /// Reads an OpenAI `usage` object (`prompt_tokens`, `completion_tokens` and the optional
    /// `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`).
    /// Returns `None` when the object is missing, null or inconsistent (a subset larger than its total).
    pub fn from_openai(usage: &serde_json::Value) -> Option<Usage> {
        let obj = usage.as_object()?;
        let prompt_total = obj.get("prompt_tokens")?.as_u64()?;
        let completion_total = obj
            .get("completion_tokens")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let cached = usage
            .pointer("/prompt_tokens_details/cached_tokens")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let reasoning = usage
            .pointer("/completion_tokens_details/reasoning_tokens")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        Some(Usage {
            prompt: prompt_total.checked_sub(cached)?,
            cached,
            completion: completion_total.checked_sub(reasoning)?,
            reasoning,
        })
    }

    /// All tokens of all classes.
    pub fn total(&self) -> u128 {
        u128::from(self.prompt)
            + u128::from(self.cached)
            + u128::from(self.completion)
            + u128::from(self.reasoning)
    }
}

/// Network price parameters (read from the root contract; a daemon checks `version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceParams {
    /// Params version in the root contract.
    pub version: u32,
    /// nanoTON per adjusted token.
    pub price_per_token: u64,
    /// Multiplier for uncached prompt tokens, thousandths.
    pub prompt_multiplier: u32,
    /// Multiplier for cached prompt tokens, thousandths.
    pub cached_multiplier: u32,
    /// Multiplier for completion tokens, thousandths.
    pub completion_multiplier: u32,
    /// Multiplier for reasoning tokens, thousandths.
    pub reasoning_multiplier: u32,
    /// The worker's share of what the client pays, basis points (≤ 10 000).
    pub worker_share_bps: u32,
}

impl Default for PriceParams {
    /// Development defaults: 1000 nanoTON per token at 1×, cached prompt at 0.1×, completion 4×,
    /// reasoning 4×, workers keep 90 %.
    fn default() -> Self {
        PriceParams {
            version: 1,
            price_per_token: 1000,
            prompt_multiplier: 1000,
            cached_multiplier: 100,
            completion_multiplier: 4000,
            reasoning_multiplier: 4000,
            worker_share_bps: 9000,
        }
    }
}

/// What one response costs and how it splits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// What the client pays, nanoTON.
    pub client: u128,
    /// What the worker earns, nanoTON.
    pub worker: u128,
    /// What the proxy keeps, nanoTON (`client − worker`).
    pub proxy: u128,
}

/// Pricing failures.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PricingError {
    /// An intermediate product does not fit in 128 bits.
    #[error("price arithmetic overflow")]
    Overflow,
    /// `worker_share_bps` above 10 000.
    #[error("worker share {0} bps is above 10000")]
    BadShare(u32),
}

impl PriceParams {
    /// Checks the parameters themselves.
    pub fn validate(&self) -> Result<(), PricingError> {
        if u128::from(self.worker_share_bps) > BPS {
            return Err(PricingError::BadShare(self.worker_share_bps));
        }
        Ok(())
    }

    /// Adjusted tokens in millionths (`tokens × coefficient × multiplier`, both in thousandths).
    pub fn adjusted_micro(&self, usage: &Usage, coef: Coefficient) -> Result<u128, PricingError> {
        let classes = [
            (usage.prompt, self.prompt_multiplier),
            (usage.cached, self.cached_multiplier),
            (usage.completion, self.completion_multiplier),
            (usage.reasoning, self.reasoning_multiplier),
        ];
        let mut sum: u128 = 0;
        for (tokens, mult) in classes {
            let part = u128::from(tokens)
                .checked_mul(u128::from(coef.0))
                .and_then(|v| v.checked_mul(u128::from(mult)))
                .ok_or(PricingError::Overflow)?;
            sum = sum.checked_add(part).ok_or(PricingError::Overflow)?;
        }
        Ok(sum)
    }

    /// The cost of `usage` served at `coef`, split between worker and proxy (see the module rule).
    pub fn cost(&self, usage: &Usage, coef: Coefficient) -> Result<Cost, PricingError> {
        self.validate()?;
        let client = self
            .adjusted_micro(usage, coef)?
            .checked_mul(u128::from(self.price_per_token))
            .ok_or(PricingError::Overflow)?
            / (MILLI * MILLI);
        self.split(client)
    }

    /// Splits what a client pays between worker and proxy (the module rule's last step); also how a
    /// charge capped at its reservation is split.
    pub fn split(&self, client: u128) -> Result<Cost, PricingError> {
        self.validate()?;
        let worker = client
            .checked_mul(u128::from(self.worker_share_bps))
            .ok_or(PricingError::Overflow)?
            / BPS;
        let proxy = client.checked_sub(worker).ok_or(PricingError::Overflow)?;
        Ok(Cost {
            client,
            worker,
            proxy,
        })
    }

    /// The most a request can cost before it runs: `prompt_bound` uncached prompt tokens and
    /// `max_tokens` generated tokens, all priced at the dearer of the completion and reasoning classes.
    pub fn worst_case(
        &self,
        prompt_bound: u64,
        max_tokens: u64,
        coef: Coefficient,
    ) -> Result<u128, PricingError> {
        let generated = Usage {
            prompt: prompt_bound,
            cached: 0,
            completion: max_tokens,
            reasoning: 0,
        };
        let mut params = *self;
        params.completion_multiplier = self.completion_multiplier.max(self.reasoning_multiplier);
        Ok(params.cost(&generated, coef)?.client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, cached: u64, completion: u64, reasoning: u64) -> Usage {
        Usage {
            prompt,
            cached,
            completion,
            reasoning,
        }
    }

    #[test]
    fn split_adds_up_and_rounds_down() {
        let params = PriceParams {
            price_per_token: 7,
            worker_share_bps: 3333,
            ..Default::default()
        };
        for (p, c, o, r, k) in [
            (1, 0, 0, 0, 1),
            (13, 5, 7, 3, 1234),
            (999, 17, 1, 0, 999),
            (0, 0, 0, 0, 5000),
        ] {
            let u = usage(p, c, o, r);
            let cost = params.cost(&u, Coefficient(k)).unwrap();
            assert_eq!(cost.client, cost.worker + cost.proxy);
            let exact = params.adjusted_micro(&u, Coefficient(k)).unwrap() * 7;
            assert!(cost.client * 1_000_000 <= exact && exact < (cost.client + 1) * 1_000_000);
            assert!(cost.worker * 10_000 <= cost.client * 3333);
        }
    }

    #[test]
    fn classes_and_coefficient_scale_the_price() {
        let params = PriceParams::default();
        let base = params
            .cost(&usage(10, 0, 0, 0), Coefficient(1000))
            .unwrap()
            .client;
        assert_eq!(base, 10 * 1000);
        let doubled = params
            .cost(&usage(10, 0, 0, 0), Coefficient(2000))
            .unwrap()
            .client;
        assert_eq!(doubled, 2 * base);
        let cached = params
            .cost(&usage(0, 10, 0, 0), Coefficient(1000))
            .unwrap()
            .client;
        assert_eq!(cached * 10, base);
        let completion = params
            .cost(&usage(0, 0, 10, 0), Coefficient(1000))
            .unwrap()
            .client;
        assert_eq!(completion, 4 * base);
    }

    #[test]
    fn worst_case_bounds_any_usage_within_limits() {
        let params = PriceParams {
            reasoning_multiplier: 6000,
            ..Default::default()
        };
        let bound = params.worst_case(100, 50, Coefficient(1500)).unwrap();
        for u in [
            usage(100, 0, 50, 0),
            usage(60, 40, 0, 50),
            usage(100, 0, 25, 25),
        ] {
            assert!(params.cost(&u, Coefficient(1500)).unwrap().client <= bound);
        }
    }

    #[test]
    fn overflow_is_an_error() {
        let params = PriceParams {
            price_per_token: u64::MAX,
            ..Default::default()
        };
        let u = usage(u64::MAX, u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(
            params.cost(&u, Coefficient(u32::MAX)),
            Err(PricingError::Overflow)
        );
        let bad = PriceParams {
            worker_share_bps: 10_001,
            ..Default::default()
        };
        assert_eq!(
            bad.cost(&u, Coefficient(1)),
            Err(PricingError::BadShare(10_001))
        );
    }

    #[test]
    fn openai_usage_is_split_into_disjoint_classes() {
        let v = serde_json::json!({"prompt_tokens": 10, "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 5}});
        assert_eq!(Usage::from_openai(&v), Some(usage(6, 4, 2, 5)));
        let bad =
            serde_json::json!({"prompt_tokens": 1, "prompt_tokens_details": {"cached_tokens": 4}});
        assert_eq!(Usage::from_openai(&bad), None);
        assert_eq!(Usage::from_openai(&serde_json::Value::Null), None);
    }
}
