//! Collateral from the operator's PCCS for the synchronous TLS verifiers, kept fresh in the background.
//!
//! A TLS verifier cannot await and must not block a runtime thread, so it only ever reads what is
//! in memory: fetching happens on one dedicated thread (`cocoon-pccs`, with its own small runtime:
//! it does not depend on the caller's runtime). A quote of a platform seen for the first time is
//! refused at once with [`AttestError::CollateralUnavailable`] and its collateral is fetched in the
//! background ("reject and prefetch"): the peer's next attempt (workers redial) finds it. What was
//! fetched is kept in memory and in the disk cache of [`PccsClient`], which is read back at start
//! so a restart does not need the PCCS; collateral is refetched before its TCB info's `nextUpdate`.
//!
//! The platform table is bounded ([`PccsOptions::max_platforms`]): when it is full, an entry
//! without collateral (its fetch failed) or with stale collateral (past `nextUpdate`) is evicted,
//! least recently used first, so quotes of made-up platforms cannot lock genuine ones out. A
//! fetch in flight is never evicted, failures back off ([`PccsOptions::retry_after`]), and a
//! queued fetch whose entry was evicted meanwhile is skipped, so such quotes cannot make the daemon
//! hammer the PCCS either.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dcap_qvl::QuoteCollateralV3;

use crate::collateral::{
    CollateralSource, CollateralStore, PccsClient, PlatformKey, collateral_next_update,
    load_collateral_file,
};
use crate::policy::Clock;
use crate::{AttestError, Result};

/// Timings and limits of [`PccsCollateral`].
#[derive(Debug, Clone)]
pub struct PccsOptions {
    /// After a failed fetch, how long before the same platform is asked for again.
    pub retry_after: Duration,
    /// Refetch this long before the TCB info's `nextUpdate`.
    pub refresh_margin: Duration,
    /// How often the background thread looks for collateral due for a refresh.
    pub check_every: Duration,
    /// Most platforms kept; quotes of further platforms get no collateral (fallback aside).
    pub max_platforms: usize,
}

impl Default for PccsOptions {
    fn default() -> Self {
        PccsOptions {
            retry_after: Duration::from_secs(60),
            refresh_margin: Duration::from_secs(3600),
            check_every: Duration::from_secs(300),
            max_platforms: 64,
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    /// The held collateral's `nextUpdate` (unix seconds), once there is some.
    next_update: Option<i64>,
    in_flight: bool,
    /// No new attempt before this (unix seconds).
    retry_at: i64,
    last_error: Option<String>,
    /// When a quote of this platform was last looked up (unix seconds): eviction order.
    last_used: i64,
}

impl Entry {
    /// Evictable when nothing is in flight and there is no collateral, or only stale collateral.
    fn evictable(&self, now: i64) -> bool {
        !self.in_flight && self.next_update.is_none_or(|n| n <= now)
    }
}

#[derive(Debug)]
struct Shared {
    platforms: CollateralStore,
    fallback: Option<Arc<QuoteCollateralV3>>,
    entries: Mutex<HashMap<PlatformKey, Entry>>,
    clock: Arc<dyn Clock>,
    options: PccsOptions,
}

impl Shared {
    fn entries(&self) -> MutexGuard<'_, HashMap<PlatformKey, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn secs(d: Duration) -> i64 {
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
    }

    /// Marks `key` in flight if an attempt is due; true when the caller must send the job. A new
    /// platform in a full table takes the place of an evictable entry, if there is one.
    fn claim(&self, entries: &mut HashMap<PlatformKey, Entry>, key: &PlatformKey) -> bool {
        let now = self.clock.now_unix();
        if !entries.contains_key(key) && entries.len() >= self.options.max_platforms {
            // Failed entries first, then stale ones; least recently used first within each.
            let victim = entries
                .iter()
                .filter(|(_, e)| e.evictable(now))
                .min_by_key(|(_, e)| (e.next_update.is_some(), e.last_used))
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else {
                return false;
            };
            entries.remove(&victim);
            self.platforms.remove(&victim);
            tracing::debug!(fmspc = %victim.fmspc, "platform evicted from the collateral table");
        }
        let e = entries.entry(key.clone()).or_default();
        e.last_used = now;
        if e.in_flight || now < e.retry_at {
            return false;
        }
        e.in_flight = true;
        true
    }
}

/// Collateral by platform from the operator's PCCS, with an optional fallback for every platform
/// (`collateral_file`). Implements [`CollateralSource`] for [`crate::Policy::with_collateral`].
#[derive(Debug)]
pub struct PccsCollateral {
    shared: Arc<Shared>,
    jobs: Mutex<mpsc::Sender<PlatformKey>>,
}

impl PccsCollateral {
    /// Starts the background thread for `client`; loads what its disk cache holds.
    pub fn start(
        client: PccsClient,
        fallback: Option<QuoteCollateralV3>,
        clock: Arc<dyn Clock>,
        options: PccsOptions,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            platforms: CollateralStore::new(),
            fallback: fallback.map(Arc::new),
            entries: Mutex::new(HashMap::new()),
            clock,
            options,
        });
        let loaded = load_cache(&shared, client.cache_dir());
        if loaded > 0 {
            tracing::info!(platforms = loaded, cache = %client.cache_dir().display(), "collateral loaded from the PCCS cache");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AttestError::Collateral(format!("PCCS fetch runtime: {e}")))?;
        let (tx, rx) = mpsc::channel::<PlatformKey>();
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("cocoon-pccs".into())
            .spawn(move || fetch_loop(&worker, &client, &runtime, &rx))
            .map_err(|e| AttestError::Collateral(format!("PCCS fetch thread: {e}")))?;
        Ok(PccsCollateral {
            shared,
            jobs: Mutex::new(tx),
        })
    }

    /// Platforms with collateral in memory.
    pub fn platforms(&self) -> Vec<PlatformKey> {
        let entries = self.shared.entries();
        let mut keys: Vec<PlatformKey> = entries
            .iter()
            .filter(|(_, e)| e.next_update.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// The last fetch error for `key`, if its last attempt failed.
    pub fn last_error(&self, key: &PlatformKey) -> Option<String> {
        self.shared
            .entries()
            .get(key)
            .and_then(|e| e.last_error.clone())
    }

    fn send(&self, key: PlatformKey) {
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(key.clone());
        if sent.is_err() {
            // The fetch thread is gone (it only exits when this value is dropped): release the claim.
            if let Some(e) = self.shared.entries().get_mut(&key) {
                e.in_flight = false;
            }
        }
    }
}

impl PccsCollateral {
    /// Collateral for a platform from memory, never waiting: on a miss the fetch is queued in the
    /// background (if due) and the answer is the fallback or
    /// [`AttestError::CollateralUnavailable`]; held collateral near its `nextUpdate` is answered and
    /// refetched in the background.
    pub fn lookup(&self, key: &PlatformKey) -> Result<Arc<QuoteCollateralV3>> {
        let shared = &self.shared;
        let now = shared.clock.now_unix();
        if let Some(held) = shared.platforms.get(key) {
            let due = {
                let mut entries = shared.entries();
                let margin = Shared::secs(shared.options.refresh_margin);
                let entry = entries.get_mut(key);
                let stale = entry.is_some_and(|e| {
                    e.last_used = now;
                    e.next_update
                        .is_some_and(|n| now >= n.saturating_sub(margin))
                });
                stale && shared.claim(&mut entries, key)
            };
            if due {
                self.send(key.clone());
            }
            return Ok(held);
        }
        let claimed = {
            let mut entries = shared.entries();
            if let Some(e) = entries.get_mut(key) {
                e.last_used = now;
            }
            shared.claim(&mut entries, key)
        };
        if claimed {
            self.send(key.clone());
        }
        shared
            .fallback
            .clone()
            .ok_or_else(|| AttestError::CollateralUnavailable {
                fmspc: key.fmspc.clone(),
            })
    }

    /// Platforms in the table (with collateral or not), at most [`PccsOptions::max_platforms`].
    pub fn table_len(&self) -> usize {
        self.shared.entries().len()
    }

    /// Whether a fetch for `key` is queued or running.
    pub fn in_flight(&self, key: &PlatformKey) -> bool {
        self.shared.entries().get(key).is_some_and(|e| e.in_flight)
    }
}

impl CollateralSource for PccsCollateral {
    fn collateral_for(&self, quote: &[u8]) -> Result<Arc<QuoteCollateralV3>> {
        match PlatformKey::of_quote(quote) {
            Ok(key) => self.lookup(&key),
            Err(e) => self.shared.fallback.clone().ok_or(e),
        }
    }
}

/// Loads every cache file into memory (expired ones too: verification judges their dates, and a
/// refresh is due at once). Returns how many platforms were loaded.
fn load_cache(shared: &Shared, dir: &Path) -> usize {
    let Ok(list) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut loaded = 0;
    for item in list.flatten() {
        let name = item.file_name();
        let Some(key) = name.to_str().and_then(PlatformKey::from_file_name) else {
            continue;
        };
        match load_collateral_file(&item.path()) {
            Ok(c) => {
                let next = collateral_next_update(&c).ok();
                shared.platforms.insert(key.clone(), c);
                let mut entries = shared.entries();
                entries.entry(key).or_default().next_update = Some(next.unwrap_or(0));
                loaded += 1;
            }
            Err(e) => {
                tracing::warn!(file = %item.path().display(), error = %e, "unreadable PCCS cache file skipped")
            }
        }
    }
    loaded
}

fn fetch_loop(
    shared: &Shared,
    client: &PccsClient,
    runtime: &tokio::runtime::Runtime,
    jobs: &mpsc::Receiver<PlatformKey>,
) {
    loop {
        match jobs.recv_timeout(shared.options.check_every) {
            Ok(key) => fetch_one(shared, client, runtime, &key),
            Err(RecvTimeoutError::Timeout) => {
                let now = shared.clock.now_unix();
                let margin = Shared::secs(shared.options.refresh_margin);
                let due: Vec<PlatformKey> = {
                    let mut entries = shared.entries();
                    let keys: Vec<PlatformKey> = entries
                        .iter()
                        .filter(|(_, e)| {
                            e.next_update
                                .is_some_and(|n| now >= n.saturating_sub(margin))
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    keys.into_iter()
                        .filter(|k| shared.claim(&mut entries, k))
                        .collect()
                };
                for key in due {
                    fetch_one(shared, client, runtime, &key);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn fetch_one(
    shared: &Shared,
    client: &PccsClient,
    runtime: &tokio::runtime::Runtime,
    key: &PlatformKey,
) {
    let now = shared.clock.now_unix();
    if !shared.entries().get(key).is_some_and(|e| e.in_flight) {
        // Evicted while queued: nobody is waiting for it any more.
        return;
    }
    // The disk cache was read at start; what is asked for here is new or due, so ask the PCCS.
    let got = runtime.block_on(client.refresh_platform(key));
    let mut entries = shared.entries();
    let Some(entry) = entries.get_mut(key) else {
        return;
    };
    entry.in_flight = false;
    match got {
        Ok(c) => {
            let next = collateral_next_update(&c).unwrap_or(0);
            // Collateral already due (a PCCS serving stale data) is kept, but not asked for again
            // before the back-off.
            let margin = Shared::secs(shared.options.refresh_margin);
            if now >= next.saturating_sub(margin) {
                entry.retry_at = now.saturating_add(Shared::secs(shared.options.retry_after));
            }
            entry.next_update = Some(next);
            entry.last_error = None;
            shared.platforms.insert(key.clone(), c);
            tracing::info!(fmspc = %key.fmspc, ca = key.ca, next_update = next, "collateral fetched from the PCCS");
        }
        Err(e) => {
            entry.retry_at = now.saturating_add(Shared::secs(shared.options.retry_after));
            entry.last_error = Some(e.to_string());
            tracing::warn!(fmspc = %key.fmspc, error = %e, "PCCS fetch failed; peers of this platform cannot be verified until it succeeds");
        }
    }
}
