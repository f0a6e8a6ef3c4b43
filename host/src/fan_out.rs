//! One thread per item, for asking several backends (or contexts) at once.

use std::any::Any;

/// Applies `work` to every item, each on its own thread, and returns the
/// results in item order. A thread that panics (a host bug: plugin panics
/// never cross the boundary) costs only its own item: `panicked` turns the
/// item and the panic's message into that item's result, so the caller can
/// say which backend it concerned.
pub fn fan_out<T: Send + Clone, R: Send>(
    items: impl IntoIterator<Item = T>,
    work: impl Fn(T) -> R + Sync,
    panicked: impl Fn(T, String) -> R,
) -> Vec<R> {
    let items: Vec<T> = items.into_iter().collect();
    let results: Vec<Result<R, String>> = std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = items.iter().cloned().map(|item| s.spawn(move || work(item))).collect();
        handles.into_iter().map(|h| h.join().map_err(|p| panic_text(p.as_ref()))).collect()
    });
    items.into_iter().zip(results).map(|(item, r)| r.unwrap_or_else(|message| panicked(item, message))).collect()
}

/// The message of a panic payload.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::fan_out;

    #[test]
    fn a_panicking_item_becomes_its_own_result() {
        let out = fan_out(
            [1, 2, 3],
            |n| if n == 2 { panic!("bug on {n}") } else { format!("ok {n}") },
            |n, message| format!("item {n} panicked: {message}"),
        );
        assert_eq!(out, ["ok 1", "item 2 panicked: bug on 2", "ok 3"]);
    }
}
