//! Runs one command with a deadline: in its own process group, killed (the
//! whole group) when the deadline passes. No shell is involved.

use std::{
    io::Read,
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It exited (code, or -signal).
    Exited {
        /// Exit code.
        code: i32,
        /// Standard output.
        stdout: String,
        /// Standard error.
        stderr: String,
    },
    /// The program could not be started.
    NotStarted(std::io::ErrorKind, String),
    /// The deadline passed; the process group was killed.
    TimedOut,
    /// The caller gave up on it; the process group was killed.
    Cancelled,
}

fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = r.read_to_end(&mut b);
        let _ = tx.send(b);
    });
    rx
}

/// Runs `cmd` until `deadline`.
pub fn run(cmd: Command, deadline: Instant) -> Outcome {
    run_until(cmd, deadline, &AtomicBool::new(false))
}

/// Runs `cmd` until `deadline`, or until `cancel` is set.
pub fn run_until(mut cmd: Command, deadline: Instant, cancel: &AtomicBool) -> Outcome {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::NotStarted(e.kind(), e.to_string()),
    };
    let pgid = child.id() as i32;
    let out = reader(child.stdout.take().expect("piped stdout"));
    let err = reader(child.stderr.take().expect("piped stderr"));
    let mut pause = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(_) => break None,
        }
        let cancelled = cancel.load(Ordering::Relaxed);
        if cancelled || Instant::now() >= deadline {
            // SAFETY: kill(2) on the group this call created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            return if cancelled { Outcome::Cancelled } else { Outcome::TimedOut };
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    // A descendant (an ssh control master) may hold the pipes; wait for them
    // only until the deadline.
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(50));
        String::from_utf8_lossy(&rx.recv_timeout(left).unwrap_or_default()).into_owned()
    };
    let stdout = collect(out);
    let stderr = collect(err);
    use std::os::unix::process::ExitStatusExt;
    let code = status.map_or(-1, |s| s.code().unwrap_or_else(|| -s.signal().unwrap_or(0)));
    Outcome::Exited { code, stdout, stderr }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_exit_and_deadline() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"]);
        assert_eq!(
            run(c, Instant::now() + Duration::from_secs(20)),
            Outcome::Exited { code: 3, stdout: "out\n".into(), stderr: "err\n".into() }
        );
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 30 & sleep 30"]);
        assert_eq!(run(c, Instant::now() + Duration::from_millis(200)), Outcome::TimedOut);
        let mut c = Command::new("sleep");
        c.arg("30");
        assert_eq!(run_until(c, Instant::now() + Duration::from_secs(30), &AtomicBool::new(true)), Outcome::Cancelled);
        assert!(matches!(
            run(Command::new("/nonexistent/skyhost-test"), Instant::now() + Duration::from_secs(1)),
            Outcome::NotStarted(std::io::ErrorKind::NotFound, _)
        ));
    }
}
