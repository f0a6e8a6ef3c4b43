//! One thread per item, for asking several backends (or contexts) at once.

/// Applies `work` to every item, each on its own thread, and returns the
/// results in item order. A thread that panicked (a host bug: plugin panics
/// never cross the boundary) loses only its own result; the hook has printed it.
pub fn fan_out<T: Send, R: Send>(items: impl IntoIterator<Item = T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = items.into_iter().map(|item| s.spawn(move || work(item))).collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    })
}
