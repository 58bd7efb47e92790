//! Guards on binding a peer's TLS key to the wallet it announced: refused keys are remembered for a
//! while, and chain lookups are rate-limited across all peers, so that no peer (or swarm of fresh
//! keys) can make the proxy hammer the chain API. Each peer (IP address) also has its own smaller
//! share of that budget, so that one peer burning fresh keys spends only its share and cannot
//! lock out new keys of other peers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a TLS key could not be bound to the wallet its peer announced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// The peer announced no wallet (or a malformed one).
    #[error("{0}")]
    NoWallet(String),
    /// The chain does not bind this key to the announced wallet's contract (no contract, another
    /// key, or a stake that may not serve).
    #[error("{0}")]
    Refused(String),
    /// Too many lookups right now; retry later.
    #[error("too many new peers right now; retry in a few seconds")]
    Busy,
    /// The chain could not be read.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
}

/// How bindings are looked up.
#[derive(Debug, Clone, Copy)]
pub struct BindPolicy {
    /// How long a refused key is answered from memory before the chain is read again.
    pub retry_after: Duration,
    /// Lookups per second across all peers (the bucket refills at this rate).
    pub lookups_per_sec: u32,
    /// Lookups allowed in a burst.
    pub burst: u32,
    /// Lookups per second one peer (IP address) may take of that budget.
    pub per_peer_lookups_per_sec: u32,
    /// Lookups one peer may take in a burst.
    pub per_peer_burst: u32,
    /// Refused keys remembered at most (beyond that, unknown keys are answered `Busy`).
    pub max_remembered: usize,
    /// INSECURE, development only, for escrows without a `client_key`: admit a client key for the
    /// wallet it names as long as that wallet's escrow with this proxy exists (anyone naming a wallet
    /// spends its escrow).
    pub dev_trust_client_wallet: bool,
}

impl Default for BindPolicy {
    fn default() -> Self {
        BindPolicy {
            retry_after: Duration::from_secs(30),
            lookups_per_sec: 5,
            burst: 20,
            per_peer_lookups_per_sec: 1,
            per_peer_burst: 4,
            max_remembered: 100_000,
            dev_trust_client_wallet: false,
        }
    }
}

/// A TLS key and the account id of the wallet it announced.
pub(crate) type Pair = ([u8; 32], [u8; 32]);

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: u32) -> Bucket {
        Bucket {
            tokens: f64::from(burst.max(1)),
            at: Instant::now(),
        }
    }

    /// Refills at `rate` per second up to `burst`, as of `now`.
    fn refill(&mut self, now: Instant, rate: u32, burst: u32) {
        let refill = now.duration_since(self.at).as_secs_f64() * f64::from(rate);
        self.tokens = (self.tokens + refill).min(f64::from(burst.max(1)));
        self.at = now;
    }

    fn take(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Peers whose budget share is tracked at most; beyond that, buckets that refilled are dropped
/// (a full bucket is the same as none), and a new peer is refused while all are in use.
const MAX_PEERS: usize = 65_536;

/// The negative cache and the lookup budget.
pub(crate) struct BindGuard {
    policy: BindPolicy,
    refused: Mutex<HashMap<Pair, (Instant, BindError)>>,
    bucket: Mutex<Bucket>,
    peers: Mutex<HashMap<IpAddr, Bucket>>,
    /// One lookup at a time: concurrent requests of one new key share its result.
    pub(crate) lookup: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl BindGuard {
    pub(crate) fn new(policy: BindPolicy) -> Self {
        BindGuard {
            policy,
            refused: Mutex::new(HashMap::new()),
            bucket: Mutex::new(Bucket::full(policy.burst)),
            peers: Mutex::new(HashMap::new()),
            lookup: tokio::sync::Mutex::new(()),
        }
    }

    /// The remembered refusal of this key with this wallet, while it is fresh.
    pub(crate) fn refused(&self, key: &Pair) -> Option<BindError> {
        let map = lock(&self.refused);
        map.get(key)
            .filter(|(at, _)| at.elapsed() < self.policy.retry_after)
            .map(|(_, e)| e.clone())
    }

    /// Remembers a refusal (chain failures too: a down chain is not retried per request either).
    pub(crate) fn remember(&self, key: Pair, error: BindError) {
        let mut map = lock(&self.refused);
        if map.len() >= self.policy.max_remembered {
            let ttl = self.policy.retry_after;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        if map.len() < self.policy.max_remembered {
            map.insert(key, (Instant::now(), error));
        }
    }

    /// Forgets a key's refusal (it was bound).
    pub(crate) fn forget(&self, key: &Pair) {
        lock(&self.refused).remove(key);
    }

    /// Takes one lookup from the budget, and from `peer`'s share of it when the peer is known;
    /// false when either is spent (a spent share leaves the common budget untouched).
    pub(crate) fn take(&self, peer: Option<IpAddr>) -> bool {
        let now = Instant::now();
        let (rate, burst) = (
            self.policy.per_peer_lookups_per_sec,
            self.policy.per_peer_burst,
        );
        if let Some(ip) = peer {
            let mut peers = lock(&self.peers);
            if !peers.contains_key(&ip) && peers.len() >= MAX_PEERS {
                peers.retain(|_, b| {
                    b.refill(now, rate, burst);
                    b.tokens < f64::from(burst.max(1))
                });
                if peers.len() >= MAX_PEERS {
                    return false;
                }
            }
            let share = peers.entry(ip).or_insert_with(|| Bucket::full(burst));
            share.refill(now, rate, burst);
            if !share.take() {
                return false;
            }
        }
        let mut b = lock(&self.bucket);
        b.refill(now, self.policy.lookups_per_sec, self.policy.burst);
        b.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_expire_and_the_budget_runs_out() {
        let guard = BindGuard::new(BindPolicy {
            retry_after: Duration::from_millis(50),
            lookups_per_sec: 1,
            burst: 3,
            max_remembered: 2,
            dev_trust_client_wallet: false,
            ..BindPolicy::default()
        });
        guard.remember(([1; 32], [0; 32]), BindError::Refused("no".into()));
        assert_eq!(
            guard.refused(&([1; 32], [0; 32])),
            Some(BindError::Refused("no".into()))
        );
        assert_eq!(guard.refused(&([2; 32], [0; 32])), None);
        // Bounded memory: a third key is not remembered while the two are fresh.
        guard.remember(([2; 32], [0; 32]), BindError::Busy);
        guard.remember(([3; 32], [0; 32]), BindError::Busy);
        assert_eq!(guard.refused(&([3; 32], [0; 32])), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(guard.refused(&([1; 32], [0; 32])), None, "refusal expired");
        guard.remember(([3; 32], [0; 32]), BindError::Busy);
        assert_eq!(
            guard.refused(&([3; 32], [0; 32])),
            Some(BindError::Busy),
            "expired ones purged"
        );
        guard.forget(&([3; 32], [0; 32]));
        assert_eq!(guard.refused(&([3; 32], [0; 32])), None);
        // Three lookups in a burst, then none until the bucket refills (1 per second).
        assert!(guard.take(None) && guard.take(None) && guard.take(None));
        assert!(!guard.take(None));
    }

    #[test]
    fn one_peer_spends_only_its_share_of_the_budget() {
        let guard = BindGuard::new(BindPolicy {
            lookups_per_sec: 1,
            burst: 6,
            per_peer_lookups_per_sec: 1,
            per_peer_burst: 2,
            ..BindPolicy::default()
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        // Peer a burns fresh keys: two lookups, then refused, however often it tries.
        assert!(guard.take(Some(a)) && guard.take(Some(a)));
        for _ in 0..10 {
            assert!(!guard.take(Some(a)));
        }
        // The common budget still has four: peer b is served.
        assert!(guard.take(Some(b)) && guard.take(Some(b)));
        assert!(guard.take(None) && guard.take(None));
        assert!(!guard.take(None), "the common budget holds too");
    }
}
