//! Runs a command and prints `SECONDS PEAK_RSS_KB EXIT_CODE CPU_SECONDS`, measured with
//! wait4 from this small process, so that the child's peak RSS does not
//! include a large parent's (a child forked from Python inherits Python's
//! high-water mark). Used by bench/run.

use std::process::{Command, Stdio};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: measure PROGRAM [ARGS...]");
        std::process::exit(2);
    };
    let start = std::time::Instant::now();
    // Reaped by wait4 below, which also gives the rusage `Child::wait` does not.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child we spawned.
    unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    println!("{secs:.9} {} {code} {cpu:.6}", usage.ru_maxrss);
}
