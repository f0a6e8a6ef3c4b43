//! Answers cached for a short time; concurrent identical requests share one
//! backend call (the first computes, the rest wait for its result).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::OnceCell;

struct Slot<V> {
    created: Instant,
    cell: Arc<OnceCell<V>>,
}

/// A time-limited, single-flight cache.
pub struct Cache<V> {
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot<V>>>,
}

impl<V: Clone> Cache<V> {
    /// A cache keeping values for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, slots: Mutex::new(HashMap::new()) }
    }

    /// The cached value for `key`, if it is fresh and computed.
    pub fn peek(&self, key: &str) -> Option<V> {
        let slots = self.slots.lock().expect("cache lock");
        let slot = slots.get(key).filter(|s| s.created.elapsed() < self.ttl)?;
        slot.cell.get().cloned()
    }

    /// The value for `key`: cached, being computed by another request, or
    /// computed now by `compute`. Values `keep` rejects are not cached.
    pub async fn get_or_compute<F, Fut>(&self, key: String, keep: impl Fn(&V) -> bool, compute: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let cell = {
            let mut slots = self.slots.lock().expect("cache lock");
            let fresh = slots.get(&key).is_some_and(|s| s.created.elapsed() < self.ttl);
            if !fresh {
                if slots.len() > 1024 {
                    let ttl = self.ttl;
                    slots.retain(|_, s| s.created.elapsed() < ttl);
                }
                slots.insert(key.clone(), Slot { created: Instant::now(), cell: Arc::new(OnceCell::new()) });
            }
            slots[&key].cell.clone()
        };
        let value = cell.get_or_init(compute).await.clone();
        if !keep(&value) {
            let mut slots = self.slots.lock().expect("cache lock");
            if slots.get(&key).is_some_and(|s| Arc::ptr_eq(&s.cell, &cell)) {
                slots.remove(&key);
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_requests_share_one_computation() {
        let cache = Arc::new(Cache::new(Duration::from_secs(60)));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_compute(
                            "k".into(),
                            |_| true,
                            || async {
                                calls.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                7
                            },
                        )
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    // Expiry without a clock race: a zero lifetime is already over when the
    // next request comes, an hour is not.
    #[tokio::test]
    async fn entries_expire_after_their_lifetime_and_not_before() {
        let gone = Cache::new(Duration::ZERO);
        assert_eq!(gone.get_or_compute("a".into(), |_| true, || async { 1 }).await, 1);
        assert_eq!(gone.peek("a"), None);
        assert_eq!(gone.get_or_compute("a".into(), |_| true, || async { 2 }).await, 2);
        let kept = Cache::new(Duration::from_secs(3600));
        assert_eq!(kept.get_or_compute("a".into(), |_| true, || async { 1 }).await, 1);
        assert_eq!(kept.peek("a"), Some(1));
        assert_eq!(kept.get_or_compute("a".into(), |_| true, || async { 2 }).await, 1);
    }

    #[tokio::test]
    async fn rejected_values_are_not_kept() {
        let cache = Cache::new(Duration::from_secs(3600));
        assert_eq!(cache.get_or_compute("b".into(), |v| *v > 10, || async { 4 }).await, 4);
        assert_eq!(cache.peek("b"), None);
        assert_eq!(cache.get_or_compute("b".into(), |v| *v > 10, || async { 5 }).await, 5);
        assert_eq!(cache.get_or_compute("c".into(), |v| *v > 10, || async { 11 }).await, 11);
        assert_eq!(cache.get_or_compute("c".into(), |v| *v > 10, || async { 12 }).await, 11);
    }
}
