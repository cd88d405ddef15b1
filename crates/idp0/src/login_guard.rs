//! Login protection, in front of the password check:
//!
//! * [`PasswordGate`]: a fixed number of Argon2id checks at once (each holds ≈19 MiB), run on
//!   that many dedicated threads, a bounded queue with a wait deadline, and a clear answer when
//!   full (503 + `Retry-After`), so memory stays bounded whatever the load (STYLE: "unbounded work
//!   per request"). Dedicated threads rather than tokio's blocking pool: the pool grows new
//!   threads while a finishing one hands its slot on, and each new thread's allocator arena kept
//!   its own freed 19 MiB (200 wrong logins on 2 slots: 460 MB RSS on the blocking pool).
//! * [`LoginThrottle`]: per-account and per-client-address throttling of failed logins (NIST SP
//!   800-63B §5.2.2): a few free failures, then exponentially growing delays, then a temporary
//!   lock. A refused attempt runs no Argon2id and does not extend the lock, and the right password
//!   is refused too while locked; an existing SSO session is unaffected (it never reaches the
//!   password form). The counts live in the store ([`crate::store::Store::count_login_attempt`]:
//!   one atomic upsert per key), so every replica on the same database sees the same counts and N
//!   replicas behind a balancer give no more guesses than one; rows expire and are purged with
//!   the store's other expiring rows. Time comes from the injected clock. A store that cannot be
//!   reached fails the login closed (503), never "no throttling".
//!
//! Attempts are counted when they start, not when they fail, so a burst of concurrent guesses
//! cannot all slip through before the first failure is recorded; a success or a check that never
//! ran takes its count back.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use protocol::UnixTime;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::store::{Store, StoreError};

/// Audit events (failed logins, locks, throttled attempts) go to this tracing target.
pub const AUDIT_TARGET: &str = "idp0::audit";

/// The limits of login protection. Defaults suit a small deployment; tests tighten them.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Password checks running at once (default: the number of CPUs).
    pub max_concurrent_checks: usize,
    /// Password checks waiting for a slot; more are refused at once with 503.
    pub max_waiting_checks: usize,
    /// How long a check may wait for a slot before the request gets 503.
    pub check_wait: Duration,
    /// Failures per account (known username, or the same unknown username).
    pub account: ThrottlePolicy,
    /// Failures per client IP address (looser: several people may share one).
    pub address: ThrottlePolicy,
}

impl Default for LoginLimits {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self {
            max_concurrent_checks: cpus,
            max_waiting_checks: cpus * 64,
            check_wait: Duration::from_secs(5),
            account: ThrottlePolicy {
                free_failures: 5,
                max_delay_seconds: 60,
                lock_after: 10,
                lock_seconds: 300,
                forget_after_seconds: 3600,
            },
            address: ThrottlePolicy {
                free_failures: 20,
                max_delay_seconds: 60,
                lock_after: 50,
                lock_seconds: 300,
                forget_after_seconds: 3600,
            },
        }
    }
}

/// How consecutive failures slow the next attempt down.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed without delay.
    pub free_failures: u32,
    /// Cap of the exponential delay (1 s, 2 s, 4 s, … after the free failures).
    pub max_delay_seconds: i64,
    /// After this many consecutive failures the key is locked for `lock_seconds` after each
    /// further failure (so at most one guess per lock period; NIST's 100 takes hours).
    pub lock_after: u32,
    /// How long a lock lasts.
    pub lock_seconds: i64,
    /// Failures older than this are forgotten.
    pub forget_after_seconds: i64,
}

impl ThrottlePolicy {
    /// When the next attempt may run after `f`.
    fn next_allowed(&self, f: &Failures) -> UnixTime {
        if f.count >= self.lock_after {
            return f.last.saturating_add(self.lock_seconds);
        }
        if f.count < self.free_failures {
            return f.last;
        }
        let doublings = (f.count - self.free_failures).min(30);
        f.last
            .saturating_add((1_i64 << doublings).min(self.max_delay_seconds))
    }

    /// `f` as it counts at `now` (old failures are forgotten).
    fn current(&self, f: Option<Failures>, now: UnixTime) -> Failures {
        f.filter(|f| now.saturating_sub(f.last) < self.forget_after_seconds)
            .unwrap_or_default()
    }
}

/// Consecutive failures of one key.
#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    count: u32,
    last: UnixTime,
}

/// Why an attempt may not run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until an attempt may run (`Retry-After`).
    pub retry_after: i64,
    /// Whether this is a lock (rather than a growing delay).
    pub locked: bool,
}

/// The account a login attempt names.
#[derive(Debug, Clone)]
pub enum Account {
    /// A configured user, by stable id.
    Known(String),
    /// A username no user has: throttled the same way, so a lock does not reveal who exists.
    /// Stored as a SHA-256 digest (what people type as a username is sometimes a password).
    Unknown(String),
}

impl Account {
    /// The account for what was typed in the username field.
    pub fn named(user_id: Option<&str>, typed_username: &str) -> Self {
        match user_id {
            Some(id) => Self::Known(id.to_owned()),
            None => Self::Unknown(crate::store::secret_hash(
                &typed_username.trim().to_lowercase(),
            )),
        }
    }

    fn audit_id(&self) -> &str {
        match self {
            Self::Known(id) => id,
            Self::Unknown(_) => "-",
        }
    }
}

/// A started attempt: its count is already recorded as a failure.
#[derive(Debug)]
pub struct Attempt {
    account: Account,
    address: Option<IpAddr>,
    account_failures: i64,
}

/// Why an attempt did not start.
#[derive(Debug, thiserror::Error)]
pub enum NotStarted {
    /// Too many recent failures for the account or the address.
    #[error("login attempt throttled for {} s", .0.retry_after)]
    Throttled(Throttled),
    /// The shared counts could not be read or written: the login fails closed (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Per-account and per-client-address failure counters, kept in the store so every replica
/// sharing the database sees the same counts.
pub struct LoginThrottle {
    account_policy: ThrottlePolicy,
    address_policy: ThrottlePolicy,
    store: Arc<dyn Store>,
}

impl Account {
    /// The account's row in the store.
    fn key(&self) -> String {
        match self {
            Self::Known(id) => format!("user:{id}"),
            Self::Unknown(digest) => format!("unknown:{digest}"),
        }
    }
}

/// An address's row in the store.
fn address_key(address: IpAddr) -> String {
    format!("ip:{address}")
}

impl LoginThrottle {
    /// Counters under `limits`, kept in `store`.
    pub fn new(limits: &LoginLimits, store: Arc<dyn Store>) -> Self {
        Self {
            account_policy: limits.account,
            address_policy: limits.address,
            store,
        }
    }

    /// Starts an attempt at `now`, or says how long to wait. A refused attempt changes nothing
    /// (so hammering a locked account does not keep it locked). One statement per key: the
    /// account's count, then the address's; an address that must wait takes the account's count
    /// back.
    pub async fn begin(
        &self,
        account: Account,
        address: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<Attempt, NotStarted> {
        let account_key = account.key();
        let counted = self
            .store
            .count_login_attempt(&account_key, &self.account_policy, now)
            .await?;
        let refused = match (counted, address) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(a)) => {
                let by_address = self
                    .store
                    .count_login_attempt(&address_key(a), &self.address_policy, now)
                    .await;
                match by_address {
                    Ok(Some(_)) => false,
                    Ok(None) => {
                        self.store.uncount_login_attempt(&account_key).await?;
                        true
                    }
                    Err(e) => {
                        // Best effort: the request fails closed either way.
                        let _ = self.store.uncount_login_attempt(&account_key).await;
                        return Err(e.into());
                    }
                }
            }
        };
        match counted {
            Some(account_failures) if !refused => Ok(Attempt {
                account,
                address,
                account_failures,
            }),
            _ => {
                let refusal = self.refusal(&account_key, address, now).await?;
                tracing::info!(
                    target: AUDIT_TARGET,
                    event = "login_throttled",
                    user_id = account.audit_id(),
                    address = ?address,
                    retry_after = refusal.retry_after,
                    locked = refusal.locked,
                    "login attempt refused without checking the password"
                );
                Err(NotStarted::Throttled(refusal))
            }
        }
    }

    /// How long a refused attempt must wait: the longer of the account's and the address's waits.
    async fn refusal(
        &self,
        account_key: &str,
        address: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<Throttled, StoreError> {
        let mut keys = vec![(account_key.to_owned(), &self.account_policy)];
        if let Some(a) = address {
            keys.push((address_key(a), &self.address_policy));
        }
        let mut refusal = Throttled {
            retry_after: 1,
            locked: false,
        };
        let mut worst = 0;
        for (key, policy) in keys {
            let found = self.store.find_login_failures(&key).await?;
            let f = policy.current(
                found.map(|(count, last)| Failures {
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    last,
                }),
                now,
            );
            let wait = policy.next_allowed(&f).saturating_sub(now);
            if wait > worst {
                worst = wait;
                refusal = Throttled {
                    retry_after: wait,
                    locked: f.count >= policy.lock_after,
                };
            }
        }
        Ok(refusal)
    }

    /// The password was wrong: the attempt stays counted. Logs the audit event, and a lock when
    /// this failure starts one.
    pub fn failed(&self, attempt: &Attempt) {
        let locked = attempt.account_failures >= i64::from(self.account_policy.lock_after);
        if locked {
            tracing::warn!(
                target: AUDIT_TARGET,
                event = "account_locked",
                user_id = attempt.account.audit_id(),
                address = ?attempt.address,
                failures = attempt.account_failures,
                lock_seconds = self.account_policy.lock_seconds,
                "account temporarily locked after repeated failed logins"
            );
        } else {
            tracing::info!(
                target: AUDIT_TARGET,
                event = "login_failed",
                user_id = attempt.account.audit_id(),
                address = ?attempt.address,
                failures = attempt.account_failures,
                "failed login"
            );
        }
    }

    /// The password was right: the account's failures are forgotten and the address gets this
    /// attempt back.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), StoreError> {
        self.store
            .delete_login_failures(&attempt.account.key())
            .await?;
        self.give_back_address(attempt.address).await
    }

    /// The check never ran (the gate was full): the attempt is not held against anyone.
    pub async fn abandoned(&self, attempt: Attempt) -> Result<(), StoreError> {
        self.store
            .uncount_login_attempt(&attempt.account.key())
            .await?;
        self.give_back_address(attempt.address).await
    }

    async fn give_back_address(&self, address: Option<IpAddr>) -> Result<(), StoreError> {
        match address {
            Some(a) => self.store.uncount_login_attempt(&address_key(a)).await,
            None => Ok(()),
        }
    }
}

/// The password check could not get a slot in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// Seconds to wait before trying again (`Retry-After`).
    pub retry_after: u64,
}

/// A password check for a worker thread.
type Job = Box<dyn FnOnce() + Send>;

/// At most `max_concurrent_checks` Argon2id checks at once, on as many dedicated threads; the rest
/// wait up to `check_wait`.
pub struct PasswordGate {
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    wait: Duration,
    max_waiting: usize,
    waiting: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    started: AtomicU64,
}

/// Decrements a counter when dropped (also when a request is cancelled mid-wait).
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn enter(counter: &Arc<AtomicUsize>) -> (Self, usize) {
        let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
        (Self(counter.clone()), now)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordGate {
    /// A gate with `limits`' sizes and its worker threads (they end when the gate is dropped).
    pub fn new(limits: &LoginLimits) -> std::io::Result<Self> {
        let slots = limits.max_concurrent_checks.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..slots {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("idp0-password-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let Ok(queue) = queue.lock() else { return };
                            queue.recv()
                        };
                        let Ok(job) = job else { return };
                        job();
                    }
                })?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(slots)),
            jobs,
            wait: limits.check_wait,
            max_waiting: limits.max_waiting_checks,
            waiting: Arc::new(AtomicUsize::new(0)),
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
            started: AtomicU64::new(0),
        })
    }

    /// Checks `password` against the PHC string `phc` on a worker thread, holding a slot until
    /// the check has finished (even if the request is dropped meanwhile).
    pub async fn verify(&self, password: &SecretString, phc: &str) -> Result<bool, Busy> {
        let busy = Busy {
            retry_after: self.wait.as_secs().max(1),
        };
        let permit = {
            let (_waiting, queued) = Counted::enter(&self.waiting);
            if queued > self.max_waiting {
                return Err(busy);
            }
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) | Err(_) => return Err(busy),
            }
        };
        self.started.fetch_add(1, Ordering::SeqCst);
        let (running, now_running) = Counted::enter(&self.running);
        self.peak.fetch_max(now_running, Ordering::SeqCst);
        let (password, phc) = (password.clone(), phc.to_owned());
        let (done, verified) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Fields drop in order: the check stops counting as running before its slot frees.
            let _slot = (running, permit);
            let _ = done.send(crate::password::verify_now(password.expose_secret(), &phc));
        });
        self.jobs.send(job).map_err(|_| busy)?;
        Ok(verified.await.unwrap_or(false))
    }

    /// How many checks have started (a throttled login must not add one).
    pub fn checks_started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    /// The most checks that ever ran at once (observability and tests).
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
#[path = "login_guard_tests.rs"]
mod tests;
