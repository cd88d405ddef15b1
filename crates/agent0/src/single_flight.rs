//! Per-key single flight: one task at a time does the slow work for a key (a token exchange, an
//! MCP `initialize`) while others asking for the same key wait for it; other keys never wait.
//! The map of keys is locked only to find or drop a key's lock, never across an `.await`, and a
//! key's entry lives only while some task holds or waits for it, so the map stays as small as
//! the work in flight.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

type Lock = Arc<tokio::sync::Mutex<()>>;

/// Async locks by key, created on demand and dropped when nobody holds or waits for them.
pub(crate) struct KeyedLocks<K> {
    locks: Mutex<HashMap<K, Lock>>,
}

impl<K: Hash + Eq + Clone> KeyedLocks<K> {
    pub(crate) fn new() -> Self {
        Self {
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until no other task holds `key`, and holds it until the guard is dropped.
    pub(crate) async fn lock(&self, key: K) -> KeyGuard<'_, K> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        // If this wait is cancelled, the ticket still drops the entry when it was the last one.
        let ticket = Ticket {
            owner: self,
            key,
            lock: Some(lock.clone()),
        };
        let held = lock.lock_owned().await;
        KeyGuard {
            _held: held,
            _ticket: ticket,
        }
    }

    /// How many keys are held or waited for.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A held key (fields drop in order: the lock is released before the entry is tidied).
pub(crate) struct KeyGuard<'a, K: Hash + Eq + Clone> {
    _held: OwnedMutexGuard<()>,
    _ticket: Ticket<'a, K>,
}

/// One task's interest in a key.
struct Ticket<'a, K: Hash + Eq + Clone> {
    owner: &'a KeyedLocks<K>,
    key: K,
    lock: Option<Lock>,
}

impl<K: Hash + Eq + Clone> Drop for Ticket<'_, K> {
    fn drop(&mut self) {
        let mut locks = self.owner.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Every ticket lets go of its reference under the map lock, and a held lock's own
        // reference is gone before its ticket drops, so the last ticket sees only the map's.
        drop(self.lock.take());
        if locks
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_and_entries_go_when_done() {
        let locks = Arc::new(KeyedLocks::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (locks, inside, most) = (locks.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let _guard = locks.lock("a").await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Another key is never held up by "a".
        tokio::time::timeout(Duration::from_millis(20), locks.lock("b"))
            .await
            .unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_no_entry() {
        let locks = KeyedLocks::new();
        let held = locks.lock("a").await;
        let waiting = tokio::time::timeout(Duration::from_millis(10), locks.lock("a")).await;
        assert!(waiting.is_err());
        assert_eq!(locks.len(), 1);
        drop(held);
        assert_eq!(locks.len(), 0);
    }
}
