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
//!   password form). Tables are bounded TTL caches (`moka`); time comes from the injected clock.
//!
//! Attempts are counted when they start, not when they fail, so a burst of concurrent guesses
//! cannot all slip through before the first failure is recorded; a success or a check that never
//! ran takes its count back.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use protocol::UnixTime;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

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
    account_failures: u32,
}

/// Per-account and per-address failure counters with bounded memory.
pub struct LoginThrottle {
    account_policy: ThrottlePolicy,
    address_policy: ThrottlePolicy,
    /// Configured users only, so capacity covers every user and nothing is ever evicted early.
    known: Cache<String, Failures>,
    /// Unknown usernames and addresses: bounded, least useful entries evicted first; losing one
    /// only forgets failures against an account that does not exist or a long-idle address.
    unknown: Cache<String, Failures>,
    addresses: Cache<IpAddr, Failures>,
    /// Check-and-count is one step, so concurrent attempts cannot all pass a check.
    update: Mutex<()>,
}

impl LoginThrottle {
    /// Counters for `users` configured users under `limits`.
    pub fn new(limits: &LoginLimits, users: usize) -> Self {
        let idle = |p: &ThrottlePolicy| {
            let seconds = p.forget_after_seconds.max(p.lock_seconds).max(1);
            Duration::from_secs(u64::try_from(seconds).unwrap_or(u64::MAX))
        };
        let account_idle = idle(&limits.account);
        Self {
            account_policy: limits.account,
            address_policy: limits.address,
            known: Cache::builder()
                .max_capacity(u64::try_from(users).unwrap_or(u64::MAX).saturating_add(16))
                .time_to_idle(account_idle)
                .build(),
            unknown: Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(account_idle)
                .build(),
            addresses: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(idle(&limits.address))
                .build(),
            update: Mutex::new(()),
        }
    }

    fn account_entry(&self, account: &Account) -> Option<Failures> {
        match account {
            Account::Known(id) => self.known.get(id),
            Account::Unknown(digest) => self.unknown.get(digest),
        }
    }

    fn put_account(&self, account: &Account, f: Failures) {
        match account {
            Account::Known(id) => self.known.insert(id.clone(), f),
            Account::Unknown(digest) => self.unknown.insert(digest.clone(), f),
        }
    }

    /// Starts an attempt at `now`, or says how long to wait. A refused attempt changes nothing
    /// (so hammering a locked account does not keep it locked).
    pub fn begin(
        &self,
        account: Account,
        address: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<Attempt, Throttled> {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let by_account = self
            .account_policy
            .current(self.account_entry(&account), now);
        let by_address =
            address.map(|a| (a, self.address_policy.current(self.addresses.get(&a), now)));
        let mut refusal: Option<Throttled> = None;
        let mut consider = |policy: &ThrottlePolicy, f: &Failures| {
            let wait = policy.next_allowed(f).saturating_sub(now);
            if wait > 0 {
                let locked = f.count >= policy.lock_after;
                let worse = refusal.is_none_or(|r| wait > r.retry_after);
                if worse {
                    refusal = Some(Throttled {
                        retry_after: wait,
                        locked,
                    });
                }
            }
        };
        consider(&self.account_policy, &by_account);
        if let Some((_, f)) = &by_address {
            consider(&self.address_policy, f);
        }
        if let Some(refusal) = refusal {
            tracing::info!(
                target: AUDIT_TARGET,
                event = "login_throttled",
                user_id = account.audit_id(),
                address = ?address,
                retry_after = refusal.retry_after,
                locked = refusal.locked,
                "login attempt refused without checking the password"
            );
            return Err(refusal);
        }
        let account_failures = by_account.count.saturating_add(1);
        self.put_account(
            &account,
            Failures {
                count: account_failures,
                last: now,
            },
        );
        if let Some((a, f)) = by_address {
            self.addresses.insert(
                a,
                Failures {
                    count: f.count.saturating_add(1),
                    last: now,
                },
            );
        }
        Ok(Attempt {
            account,
            address,
            account_failures,
        })
    }

    /// The password was wrong: the attempt stays counted. Logs the audit event, and a lock when
    /// this failure starts one.
    pub fn failed(&self, attempt: &Attempt) {
        let locked = attempt.account_failures >= self.account_policy.lock_after;
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
    pub fn succeeded(&self, attempt: Attempt) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|e| e.into_inner());
        match &attempt.account {
            Account::Known(id) => self.known.invalidate(id),
            Account::Unknown(digest) => self.unknown.invalidate(digest),
        }
        self.give_back_address(attempt.address);
    }

    /// The check never ran (the gate was full): the attempt is not held against anyone.
    pub fn abandoned(&self, attempt: Attempt) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = self.account_entry(&attempt.account) {
            self.put_account(
                &attempt.account,
                Failures {
                    count: f.count.saturating_sub(1),
                    ..f
                },
            );
        }
        self.give_back_address(attempt.address);
    }

    fn give_back_address(&self, address: Option<IpAddr>) {
        if let Some(a) = address
            && let Some(f) = self.addresses.get(&a)
        {
            self.addresses.insert(
                a,
                Failures {
                    count: f.count.saturating_sub(1),
                    ..f
                },
            );
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
