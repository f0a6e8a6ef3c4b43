//! The spinner shown while Kubernetes contexts or catalog downloads are in
//! flight: only when stdout and stderr are terminals and `NO_COLOR` is unset.

use std::{
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};

use crate::gpus::gather::Progress;

/// Whether a spinner may be drawn.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal() && crate::diagnostics::stdout_color()
}

/// Runs `f`, showing what `progress` says is being waited on.
pub fn with_spinner<T>(progress: &Progress, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let done = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (done, progress) = (done.clone(), progress.clone());
        std::thread::spawn(move || {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            let mut shown = false;
            while !done.load(Ordering::Relaxed) {
                let waiting: Vec<String> = progress.lock().expect("progress lock").values().cloned().collect();
                if !waiting.is_empty() {
                    bar.set_message(waiting.join(", "));
                    bar.tick();
                    shown = true;
                }
                std::thread::sleep(Duration::from_millis(80));
            }
            if shown {
                bar.finish_and_clear();
            }
        })
    };
    let result = f();
    done.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    result
}
