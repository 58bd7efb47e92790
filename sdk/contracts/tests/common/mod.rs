//! Fixed inputs shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

pub mod net;

use cocoon_contracts::TonAddress;
use cocoon_contracts::messages::{ChildCodes, NetworkParams};
use ed25519_dalek::SigningKey;
use tonlib_core::TonHash;
use tonlib_core::cell::CellBuilder;

/// A basechain address whose account id is `[byte; 32]`.
pub fn addr(byte: u8) -> TonAddress {
    TonAddress::new(0, TonHash::from([byte; 32]))
}

/// A deterministic signing key.
pub fn key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32])
}

/// Stand-in child code (two small distinct cells): snapshots must not change with every build.
pub fn fixed_codes() -> ChildCodes {
    let cell = |tag: u32| {
        let mut b = CellBuilder::new();
        b.store_u32(32, tag).expect("fits");
        std::sync::Arc::new(b.build().expect("cell"))
    };
    ChildCodes {
        stake_code: cell(0x5743_4b45),
        escrow_code: cell(0x4553_4352),
    }
}

/// The sandbox tests' default parameters.
pub fn params() -> NetworkParams {
    NetworkParams {
        price_per_token: 20,
        prompt_mult: 10_000,
        cached_mult: 1_000,
        completion_mult: 40_000,
        reasoning_mult: 40_000,
        worker_share_bps: 9_000,
        min_worker_stake: 1_000_000_000,
        min_proxy_stake: 1_000_000_000,
        unbond_delay: 86_400,
        close_delay: 3_600,
        equivocation_slash_bps: 5_000,
        revoked_slash_bps: 2_000,
        fault_slash_bps: 100,
        reporter_reward_bps: 1_000,
        burn_slashed: false,
        grace_period: 600,
        fault_cap: 3,
        fault_period: 86_400,
    }
}
