//! What a peer must prove: roles, TCB status, image allowlist, insecure mode, and the clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::collateral::{CollateralSource, CollateralStore};
use crate::dcap::TcbStatus;
use crate::{AttestError, Result, Role};

/// The verification clock. Injectable so that tests verify fixtures at fixed times.
pub trait Clock: Send + Sync + Debug {
    /// Now, in unix seconds.
    fn now_unix(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_secs())
                .map(|s| -s)
                .unwrap_or(i64::MIN),
        }
    }
}

/// A clock that says what it is told; settable from another thread.
#[derive(Debug, Default)]
pub struct FixedClock(std::sync::atomic::AtomicI64);

impl FixedClock {
    /// A clock stopped at `unix` seconds.
    pub fn new(unix: i64) -> Self {
        FixedClock(std::sync::atomic::AtomicI64::new(unix))
    }

    /// Moves the clock to `unix` seconds.
    pub fn set(&self, unix: i64) {
        self.0.store(unix, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Which TCB statuses are acceptable. The default accepts only `UpToDate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbPolicy {
    accepted: BTreeSet<String>,
    rejected_advisories: BTreeSet<String>,
}

impl Default for TcbPolicy {
    fn default() -> Self {
        TcbPolicy {
            accepted: BTreeSet::from([TcbStatus::UpToDate.to_string()]),
            rejected_advisories: BTreeSet::new(),
        }
    }
}

impl TcbPolicy {
    /// Only `UpToDate`.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Also accepts `status` (e.g. `SWHardeningNeeded` on platforms that mitigate in software).
    pub fn allow(mut self, status: TcbStatus) -> Self {
        self.accepted.insert(status.to_string());
        self
    }

    /// Refuses quotes to which Intel advisory `id` (e.g. `INTEL-SA-00615`) applies, whatever the status.
    pub fn reject_advisory(mut self, id: &str) -> Self {
        self.rejected_advisories.insert(id.to_owned());
        self
    }

    /// Checks a verdict.
    pub fn check(&self, status: TcbStatus, advisories: &[String]) -> Result<()> {
        let refused = || AttestError::TcbStatusRejected {
            status: status.to_string(),
            advisories: advisories.to_vec(),
        };
        if !self.accepted.contains(&status.to_string()) {
            return Err(refused());
        }
        if advisories
            .iter()
            .any(|a| self.rejected_advisories.contains(a))
        {
            return Err(refused());
        }
        Ok(())
    }
}

/// Whether an image may serve in a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStatus {
    /// Listed and not revoked.
    Allowed,
    /// Listed once, revoked at this time (unix seconds).
    Revoked {
        /// When governance revoked it.
        at: u64,
    },
    /// Not listed.
    Unknown,
}

/// The allowlist of image hashes per role (in production: the root contract's).
pub trait ImageAllowlist: Send + Sync + Debug {
    /// The status of `image_hash` for `role`; errors mean "cannot tell now" and refuse the peer.
    fn status(&self, role: Role, image_hash: &[u8; 32]) -> Result<ImageStatus>;
}

/// A snapshot of allowlist entries: `(role, image hash) -> status`.
pub type AllowlistSnapshot = HashMap<(Role, [u8; 32]), ImageStatus>;

/// An allowlist held in memory; cloning shares the same entries.
#[derive(Debug, Clone, Default)]
pub struct InMemoryAllowlist {
    entries: Arc<RwLock<AllowlistSnapshot>>,
}

impl InMemoryAllowlist {
    /// An empty allowlist (refuses every attested peer).
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `image_hash` for `role`.
    pub fn allow(&self, role: Role, image_hash: [u8; 32]) -> &Self {
        self.write()
            .insert((role, image_hash), ImageStatus::Allowed);
        self
    }

    /// Revokes `image_hash` for `role` at `at` (unix seconds).
    pub fn revoke(&self, role: Role, image_hash: [u8; 32], at: u64) -> &Self {
        self.write()
            .insert((role, image_hash), ImageStatus::Revoked { at });
        self
    }

    /// Replaces every entry.
    pub fn replace(&self, snapshot: AllowlistSnapshot) {
        *self.write() = snapshot;
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, AllowlistSnapshot> {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ImageAllowlist for InMemoryAllowlist {
    fn status(&self, role: Role, image_hash: &[u8; 32]) -> Result<ImageStatus> {
        let map = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(map
            .get(&(role, *image_hash))
            .copied()
            .unwrap_or(ImageStatus::Unknown))
    }
}

/// A boxed future, for async allowlist sources without an async-trait dependency.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a [`CachingAllowlist`] gets its snapshots (the chain-backed source reads the root contract).
pub trait AllowlistSource: Send + Sync + Debug {
    /// The full current allowlist.
    fn fetch(&self) -> BoxFuture<'_, Result<AllowlistSnapshot>>;
}

/// Answers from the last snapshot of a slow source, refreshed every `refresh` interval, and refuses
/// to answer when the snapshot is older than `max_staleness` (so a revocation cannot be ignored
/// forever because the source is down).
#[derive(Debug)]
pub struct CachingAllowlist {
    source: Arc<dyn AllowlistSource>,
    refresh: Duration,
    max_staleness: Duration,
    clock: Arc<dyn Clock>,
    snapshot: RwLock<Option<(i64, Arc<AllowlistSnapshot>)>>,
}

impl CachingAllowlist {
    /// A cache over `source`; call [`CachingAllowlist::refresh`] once (or spawn the refresher)
    /// before it can answer.
    pub fn new(
        source: Arc<dyn AllowlistSource>,
        refresh: Duration,
        max_staleness: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        CachingAllowlist {
            source,
            refresh,
            max_staleness,
            clock,
            snapshot: RwLock::new(None),
        }
    }

    /// Fetches a new snapshot now.
    pub async fn refresh(&self) -> Result<()> {
        let snap = self.source.fetch().await?;
        let now = self.clock.now_unix();
        *self
            .snapshot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((now, Arc::new(snap)));
        Ok(())
    }

    /// Refreshes every interval until the returned task is aborted; failures are logged and retried.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.refresh().await {
                    tracing::warn!(error = %e, "image allowlist refresh failed; keeping the previous snapshot");
                }
                tokio::time::sleep(this.refresh).await;
            }
        })
    }
}

impl ImageAllowlist for CachingAllowlist {
    fn status(&self, role: Role, image_hash: &[u8; 32]) -> Result<ImageStatus> {
        let guard = self
            .snapshot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some((taken_at, snap)) = guard.as_ref() else {
            return Err(AttestError::AllowlistUnavailable("not loaded yet".into()));
        };
        let age = self.clock.now_unix().saturating_sub(*taken_at);
        if u64::try_from(age).unwrap_or(0) > self.max_staleness.as_secs() {
            return Err(AttestError::AllowlistUnavailable(format!(
                "last snapshot is {age}s old"
            )));
        }
        Ok(snap
            .get(&(role, *image_hash))
            .copied()
            .unwrap_or(ImageStatus::Unknown))
    }
}

/// Which evidence that proves nothing a policy still accepts (development only; every acceptance
/// logs an INSECURE warning and the peer's identity is marked insecure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsecureMode {
    /// Only hardware evidence (and, for unattested roles, none): production.
    #[default]
    Refuse,
    /// Also simulated quotes, verified like real ones but backed by nothing (`tls.mode = "simulated"`).
    Simulated,
    /// Development TLS (`tls.mode = "dev-insecure"`): any role, any evidence or none, nothing verified
    /// but the certificate itself (self-signature, lifetime, claims naming its key, pinned keys).
    Unverified,
}

/// Default longest lifetime and oldest issue time of a peer's certificate: one day.
pub const DEFAULT_MAX_CERT_AGE: Duration = Duration::from_secs(24 * 3600);

/// What this endpoint requires of its peers.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Roles a peer may have here (a proxy's server accepts `Client`; a worker's accepts `Proxy`).
    pub allowed_roles: Vec<Role>,
    /// Roles accepted without attestation evidence ("any", as COCOON does for clients). A peer of
    /// such a role that does present evidence still has it verified.
    pub unattested_roles: Vec<Role>,
    /// Development modes: what insecure evidence is accepted anyway.
    pub insecure: InsecureMode,
    /// Acceptable TCB statuses for DCAP quotes.
    pub tcb: TcbPolicy,
    /// Image hashes allowed per role.
    pub allowlist: Arc<dyn ImageAllowlist>,
    /// Collateral for peers' DCAP quotes.
    pub collateral: Arc<dyn CollateralSource>,
    /// Verification time.
    pub clock: Arc<dyn Clock>,
    /// Longest certificate lifetime accepted, notBefore to notAfter (default 24 h plus
    /// [`crate::cert::CLOCK_SKEW`], the backdating of notBefore: [`DEFAULT_MAX_CERT_AGE`] from issue).
    pub max_cert_lifetime: Duration,
    /// Oldest claims accepted: a peer whose certificate's `issued_at` is further in the past is
    /// refused as stale ([`crate::AttestError::CertificateStale`]), at the handshake and at every
    /// re-verification of a live connection (default [`DEFAULT_MAX_CERT_AGE`]).
    pub max_cert_age: Duration,
    /// If set, the peer's key must be one of these (e.g. the proxy keys registered in the root
    /// contract); the set may change while connections are open (see [`PeerKeys`]).
    pub peer_keys: Option<PeerKeys>,
    /// Per role, the measured configuration hashes (the `config_hash` claim) a peer of that role
    /// must carry; a role without an entry is not restricted. See [`Policy::require_configs`].
    pub allowed_configs: BTreeMap<Role, BTreeSet<[u8; 32]>>,
}

/// A set of accepted peer keys that whoever holds a clone may replace (a refresher following the
/// root's registrations); established connections are judged against the current set when they
/// are re-verified ([`crate::verify::PeerVerifier::recheck`]).
#[derive(Debug, Clone, Default)]
pub struct PeerKeys(Arc<RwLock<Vec<[u8; 32]>>>);

impl PeerKeys {
    /// A set holding `keys`.
    pub fn new(keys: Vec<[u8; 32]>) -> Self {
        PeerKeys(Arc::new(RwLock::new(keys)))
    }

    /// Replaces every key.
    pub fn replace(&self, keys: Vec<[u8; 32]>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = keys;
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }
}

impl Policy {
    /// A strict policy: peers of `allowed_roles` with DCAP quotes, `UpToDate` TCB, image in
    /// `allowlist`; no collateral yet (add some with [`Policy::with_collateral`]).
    pub fn strict(allowed_roles: &[Role], allowlist: Arc<dyn ImageAllowlist>) -> Self {
        Policy {
            allowed_roles: allowed_roles.to_vec(),
            unattested_roles: Vec::new(),
            insecure: InsecureMode::Refuse,
            tcb: TcbPolicy::default(),
            allowlist,
            collateral: Arc::new(CollateralStore::new()),
            clock: Arc::new(SystemClock),
            max_cert_lifetime: DEFAULT_MAX_CERT_AGE + crate::cert::CLOCK_SKEW,
            max_cert_age: DEFAULT_MAX_CERT_AGE,
            peer_keys: None,
            allowed_configs: BTreeMap::new(),
        }
    }

    /// Development mode: also accepts simulated quotes, loudly.
    pub fn insecure_dev(mut self) -> Self {
        self.insecure = InsecureMode::Simulated;
        self
    }

    /// Development TLS: accepts every cocoon certificate of any role whose key signs the
    /// handshake, without verifying its evidence; every peer is insecure (see
    /// [`InsecureMode::Unverified`]). Pin keys with [`Policy::expect_peer_keys`] if needed.
    pub fn dev_insecure() -> Self {
        let mut policy = Policy::strict(
            &[Role::Client, Role::Proxy, Role::Worker, Role::Kms],
            Arc::new(InMemoryAllowlist::new()),
        );
        policy.insecure = InsecureMode::Unverified;
        policy
    }

    /// Accepts peers of `role` without attestation (a proxy admitting clients).
    pub fn accept_unattested(mut self, role: Role) -> Self {
        if !self.unattested_roles.contains(&role) {
            self.unattested_roles.push(role);
        }
        self
    }

    /// Uses `collateral` for peers' DCAP quotes.
    pub fn with_collateral(mut self, collateral: Arc<dyn CollateralSource>) -> Self {
        self.collateral = collateral;
        self
    }

    /// Uses `clock` for verification time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Accepts only peers holding one of `keys`.
    pub fn expect_peer_keys(mut self, keys: Vec<[u8; 32]>) -> Self {
        self.peer_keys = Some(PeerKeys::new(keys));
        self
    }

    /// Accepts only peers holding a key of `keys`, a set the caller keeps replacing.
    pub fn expect_peer_key_set(mut self, keys: PeerKeys) -> Self {
        self.peer_keys = Some(keys);
        self
    }

    /// Refuses certificates issued longer than `age` ago or living longer than `age` (plus the
    /// [`crate::cert::CLOCK_SKEW`] backdating of notBefore).
    pub fn with_max_cert_age(mut self, age: Duration) -> Self {
        self.max_cert_age = age;
        self.max_cert_lifetime = age.saturating_add(crate::cert::CLOCK_SKEW);
        self
    }

    /// Accepts peers of `role` only when their claims carry one of `config_hashes` as
    /// `config_hash` (the optional configuration allowlist; an empty set refuses every peer of
    /// `role`). Checked at every handshake, cached certificates included.
    pub fn require_configs(
        mut self,
        role: Role,
        config_hashes: impl IntoIterator<Item = [u8; 32]>,
    ) -> Self {
        self.allowed_configs
            .entry(role)
            .or_default()
            .extend(config_hashes);
        self
    }

    /// Checks `claims` against the configuration allowlist of its role.
    pub fn check_config(&self, claims: &crate::Claims) -> Result<()> {
        let Some(allowed) = self.allowed_configs.get(&claims.role) else {
            return Ok(());
        };
        let hash = claims.config_hash()?;
        match hash {
            Some(h) if allowed.contains(&h) => Ok(()),
            _ => Err(AttestError::ConfigNotAllowed {
                role: claims.role.to_string(),
                config_hash: hash.map_or_else(|| "none".to_owned(), hex::encode),
            }),
        }
    }

    /// Uses `tcb` for TCB statuses.
    pub fn with_tcb(mut self, tcb: TcbPolicy) -> Self {
        self.tcb = tcb;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed(AllowlistSnapshot);
    impl AllowlistSource for Fixed {
        fn fetch(&self) -> BoxFuture<'_, Result<AllowlistSnapshot>> {
            let s = self.0.clone();
            Box::pin(async move { Ok(s) })
        }
    }

    #[test]
    fn tcb_policy_accepts_only_what_it_lists() {
        let p = TcbPolicy::strict();
        assert!(p.check(TcbStatus::UpToDate, &[]).is_ok());
        assert!(p.check(TcbStatus::OutOfDate, &[]).is_err());
        let p = p
            .allow(TcbStatus::SWHardeningNeeded)
            .reject_advisory("INTEL-SA-1");
        assert!(p.check(TcbStatus::SWHardeningNeeded, &[]).is_ok());
        assert!(
            p.check(TcbStatus::SWHardeningNeeded, &["INTEL-SA-1".into()])
                .is_err()
        );
    }

    #[tokio::test]
    async fn caching_allowlist_answers_from_snapshot_and_goes_stale() {
        let clock = Arc::new(FixedClock::new(1000));
        let snap = AllowlistSnapshot::from([((Role::Worker, [1; 32]), ImageStatus::Allowed)]);
        let c = CachingAllowlist::new(
            Arc::new(Fixed(snap)),
            Duration::from_secs(10),
            Duration::from_secs(60),
            clock.clone(),
        );
        assert!(matches!(
            c.status(Role::Worker, &[1; 32]),
            Err(AttestError::AllowlistUnavailable(_))
        ));
        c.refresh().await.expect("refresh");
        assert_eq!(
            c.status(Role::Worker, &[1; 32]).expect("status"),
            ImageStatus::Allowed
        );
        assert_eq!(
            c.status(Role::Proxy, &[1; 32]).expect("status"),
            ImageStatus::Unknown
        );
        clock.set(1061);
        assert!(matches!(
            c.status(Role::Worker, &[1; 32]),
            Err(AttestError::AllowlistUnavailable(_))
        ));
    }
}
