//! Answers kept for a while, bounded in bytes (moka): concurrent identical
//! requests share one computation (the first computes, the rest wait for its
//! result), and each answer lives as long as its kind allows (a good answer
//! for the cache's lifetime, an error for a shorter one).

use std::{future::Future, sync::Arc, time::Duration, time::Instant};

use moka::{Expiry, future::Cache as Moka};

/// How long an answer may be kept, decided per answer.
type Lifetime<V> = Arc<dyn Fn(&V) -> Duration + Send + Sync>;

struct Lifetimes<V>(Lifetime<V>);

impl<V> Expiry<String, V> for Lifetimes<V> {
    fn expire_after_create(&self, _key: &String, value: &V, _created_at: Instant) -> Option<Duration> {
        Some((self.0)(value))
    }
}

/// A size-bounded, single-flight cache.
pub struct Cache<V> {
    inner: Moka<String, V>,
}

impl<V: Clone + Send + Sync + 'static> Cache<V> {
    /// A cache of at most `max_bytes` (as `weigh` counts them), keeping each
    /// value for `lifetime(value)`.
    pub fn new(
        max_bytes: u64,
        weigh: fn(&V) -> u32,
        lifetime: impl Fn(&V) -> Duration + Send + Sync + 'static,
    ) -> Self {
        let inner = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(move |k: &String, v: &V| weigh(v).saturating_add(k.len() as u32))
            .expire_after(Lifetimes(Arc::new(lifetime)))
            .build();
        Self { inner }
    }

    /// The kept value for `key`, if any.
    #[cfg(test)]
    pub async fn peek(&self, key: &str) -> Option<V> {
        self.inner.get(key).await
    }

    /// The value for `key`: kept, being computed by another request, or
    /// computed now by `compute`.
    pub async fn get_or_compute<Fut: Future<Output = V>>(&self, key: String, compute: Fut) -> V {
        self.inner.get_with(key, compute).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const HOUR: Duration = Duration::from_secs(3600);

    fn weigh(_: &u32) -> u32 {
        1
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_identical_requests_share_one_computation() {
        let cache = Arc::new(Cache::new(1000, weigh, |_| HOUR));
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_compute("k".into(), async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            7
                        })
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
        let gone = Cache::new(1000, weigh, |_| Duration::ZERO);
        assert_eq!(gone.get_or_compute("a".into(), async { 1 }).await, 1);
        assert_eq!(gone.peek("a").await, None);
        assert_eq!(gone.get_or_compute("a".into(), async { 2 }).await, 2);
        let kept = Cache::new(1000, weigh, |_| HOUR);
        assert_eq!(kept.get_or_compute("a".into(), async { 1 }).await, 1);
        assert_eq!(kept.peek("a").await, Some(1));
        assert_eq!(kept.get_or_compute("a".into(), async { 2 }).await, 1);
    }

    #[tokio::test]
    async fn each_value_lives_as_long_as_its_kind_allows() {
        // Small values are "errors": not kept here; large ones are.
        let cache = Cache::new(1000, weigh, |v: &u32| if *v > 10 { HOUR } else { Duration::ZERO });
        assert_eq!(cache.get_or_compute("b".into(), async { 4 }).await, 4);
        assert_eq!(cache.peek("b").await, None);
        assert_eq!(cache.get_or_compute("b".into(), async { 5 }).await, 5);
        assert_eq!(cache.get_or_compute("c".into(), async { 11 }).await, 11);
        assert_eq!(cache.get_or_compute("c".into(), async { 12 }).await, 11);
    }

    #[tokio::test]
    async fn the_cache_is_bounded_by_weight() {
        let cache = Cache::new(10, |v: &u32| *v, |_| HOUR);
        for i in 0..100u32 {
            cache.get_or_compute(format!("k{i}"), async { 5 }).await;
        }
        cache.inner.run_pending_tasks().await;
        assert!(cache.inner.weighted_size() <= 10, "{}", cache.inner.weighted_size());
    }
}
