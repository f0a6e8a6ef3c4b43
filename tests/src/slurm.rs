//! A real Slurm 22.05 for the tests, on loopback: munged with a private
//! socket, slurmctld and one slurmd, with files in a temporary directory.
//! The one real node has GPUs declared as GRES over placeholder device files;
//! other nodes are declared with addresses whose slurmd never runs. Every
//! daemon is stopped by PID when the value is dropped, also on failure.
//! Also an OpenSSH server on 127.0.0.1 with a key the test makes.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

/// Why the daemons cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the Slurm daemons need root (SlurmUser=root, munged's key); run the tests as root".into());
    }
    for bin in ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/bin/scontrol"] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is missing: install slurmctld slurmd slurm-client munge (.ci/run does) to run the Slurm tests"
            ));
        }
    }
    None
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn short_hostname() -> String {
    let out = Command::new("hostname").arg("-s").output().expect("hostname");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `cmd` and returns stdout; panics with stderr when it fails.
#[track_caller]
fn check(mut cmd: Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // A zombie has exited: its parent (often not us, for a daemon) reaps it.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) == Some("Z"));
    // SAFETY: signal 0 only checks.
    !zombie && unsafe { libc::kill(pid, 0) == 0 }
}

/// Stops `pid`: SIGTERM, then SIGKILL if it is still there after 5 s.
pub fn stop_pid(pid: i32) {
    // SAFETY: a daemon this fixture started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    for _ in 0..100 {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Children of `parent` (by /proc), e.g. an sshd's per-connection processes.
fn children(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // `pid (comm) state ppid ...`; comm may hold spaces.
        let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// A running test cluster.
pub struct Slurm {
    dir: tempfile::TempDir,
    /// The real node's name (`hostname -s`).
    pub node: String,
    /// slurmctld's port.
    pub ctld_port: u16,
}

impl Slurm {
    /// Starts munged, slurmctld and slurmd; `Err` says why it cannot.
    ///
    /// Nodes: `<host>` (real: 6 × h100 and 2 × l4, partitions `gpu` and `all`),
    /// `gpu-b[1-2]` (4 × a100 each, `gpu` and `all`, slurmd never runs),
    /// `cpu1` (no GPUs, `all`, never runs).
    pub fn start() -> Result<Self, String> {
        if let Some(why) = unavailable() {
            return Err(why);
        }
        // In /tmp: the munge socket path must stay short.
        let dir = tempfile::Builder::new().prefix("skyslurm-").tempdir_in("/tmp").map_err(|e| e.to_string())?;
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        let node = short_hostname();
        let (ctld_port, slurmd_port, dead_port) = (free_port(), free_port(), free_port());
        for sub in ["dev", "state", "spool"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
        }
        for i in 0..8 {
            std::fs::write(d.join(format!("dev/nvidia{i}")), "").map_err(|e| e.to_string())?;
        }
        let dp = d.display();
        let conf = format!(
            "ClusterName=skytest\nSlurmctldHost={node}\nAuthType=auth/munge\nAuthInfo=socket={dp}/munge.sock\n\
             SlurmctldPort={ctld_port}\nSlurmdPort={slurmd_port}\nStateSaveLocation={dp}/state\nSlurmdSpoolDir={dp}/spool\n\
             SlurmctldPidFile={dp}/slurmctld.pid\nSlurmdPidFile={dp}/slurmd.pid\nSlurmctldLogFile={dp}/slurmctld.log\n\
             SlurmdLogFile={dp}/slurmd.log\nSlurmUser=root\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             SchedulerType=sched/backfill\nSelectType=select/cons_tres\nGresTypes=gpu\nReturnToService=2\n\
             SlurmdTimeout=5\nSlurmdParameters=config_overrides\nDefMemPerCPU=100\nMpiDefault=none\n\
             NodeName={node} CPUs=8 RealMemory=2000 Gres=gpu:h100:6,gpu:l4:2\n\
             NodeName=gpu-b[1-2] NodeAddr=127.0.0.[2-3] Port={dead_port} CPUs=8 RealMemory=2000 Gres=gpu:a100:4\n\
             NodeName=cpu1 NodeAddr=127.0.0.4 Port={dead_port} CPUs=4 RealMemory=1000\n\
             PartitionName=gpu Nodes={node},gpu-b[1-2] Default=YES State=UP\nPartitionName=all Nodes=ALL State=UP\n"
        );
        std::fs::write(d.join("slurm.conf"), conf).map_err(|e| e.to_string())?;
        let gres = format!(
            "NodeName={node} Name=gpu Type=h100 File={dp}/dev/nvidia[0-5]\nNodeName={node} Name=gpu Type=l4 File={dp}/dev/nvidia[6-7]\n"
        );
        std::fs::write(d.join("gres.conf"), gres).map_err(|e| e.to_string())?;
        let key: Vec<u8> = (0..1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(d.join("munge.key"), key).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("munge.key"), std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        let me = Self { dir, node, ctld_port };
        let run = |program: &str, args: &[String]| -> Result<(), String> {
            let out = Command::new(program)
                .args(args)
                .env("SLURM_CONF", me.conf())
                .output()
                .map_err(|e| format!("{program}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("{program} did not start: {}", String::from_utf8_lossy(&out.stderr).trim()))
            }
        };
        let p = |f: &str| d.join(f).display().to_string();
        run(
            "/usr/sbin/munged",
            &[
                format!("--socket={}", p("munge.sock")),
                format!("--key-file={}", p("munge.key")),
                format!("--pid-file={}", p("munged.pid")),
                format!("--log-file={}", p("munged.log")),
                format!("--seed-file={}", p("munge.seed")),
                "--force".into(),
            ],
        )?;
        run("/usr/sbin/slurmctld", &["-f".into(), p("slurm.conf")])?;
        run("/usr/sbin/slurmd", &["-f".into(), p("slurm.conf")])?;
        // Wait (bounded) until the real node has registered with its GPUs.
        for _ in 0..300 {
            if let Ok(text) = me.try_scontrol(&["-o", "show", "node", &me.node.clone()])
                && text.contains("State=IDLE")
                && text.contains("gpu:h100:6")
            {
                return Ok(me);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "slurmd did not register within 30 s; slurmctld log:\n{}",
            std::fs::read_to_string(d.join("slurmctld.log")).unwrap_or_default()
        ))
    }

    /// The directory of the cluster's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `slurm.conf`.
    pub fn conf(&self) -> PathBuf {
        self.dir().join("slurm.conf")
    }

    /// A Slurm client command pointed at this cluster.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", self.conf()).current_dir("/tmp");
        c
    }

    fn try_scontrol(&self, args: &[&str]) -> Result<String, String> {
        let out = self.cmd("scontrol").args(args).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `scontrol ARGS`, which must succeed.
    #[track_caller]
    pub fn scontrol(&self, args: &[&str]) -> String {
        let mut c = self.cmd("scontrol");
        c.args(args);
        check(c)
    }

    /// Submits `sleep 600` holding `gres` (`gpu:h100:3`) on the real node, as
    /// `user` (`root` or another user); returns the job id.
    #[track_caller]
    pub fn hold(&self, gres: &str, user: &str) -> String {
        let mut c = self.cmd("sbatch");
        c.args(["--parsable", "-w", &self.node, &format!("--gres={gres}"), "-c", "1", "--mem=100", "-o", "/dev/null"]);
        c.args(["--chdir=/tmp", "--wrap", "sleep 600"]);
        if user != "root" {
            c.arg(format!("--uid={user}"));
        }
        check(c).trim().to_string()
    }

    /// Waits (bounded) until `scontrol -d show node` reports `used` on the real node.
    #[track_caller]
    pub fn wait_gres_used(&self, used: &str) {
        for _ in 0..300 {
            if self.try_scontrol(&["-d", "-o", "show", "node", &self.node]).is_ok_and(|t| t.contains(used)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("GresUsed never became {used}: {:?}", self.try_scontrol(&["-d", "-o", "show", "node", &self.node]));
    }

    /// Starts slurmrestd (22.05: `openapi/v0.0.38`, `rest_auth/local`) on a
    /// Unix socket; it refuses to run as root, so it runs as `nobody`.
    pub fn start_rest(&self) -> Result<RestD, String> {
        if !Path::new("/usr/sbin/slurmrestd").exists() {
            return Err(
                "/usr/sbin/slurmrestd is missing: install slurmrestd (.ci/run does) to test the REST path".into()
            );
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = self.dir().join("rest");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        // nobody must pass through the cluster's directory to its socket and munge's.
        std::fs::set_permissions(self.dir(), std::fs::Permissions::from_mode(0o711)).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).map_err(|e| e.to_string())?;
        let socket = dir.join("rest.sock");
        let child = Command::new("/usr/sbin/slurmrestd")
            .arg("-f")
            .arg(self.conf())
            .args(["-a", "rest_auth/local", "-s", "openapi/v0.0.38", "-u", "nobody"])
            .arg(format!("unix:{}", socket.display()))
            .env("SLURM_CONF", self.conf())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("slurmrestd.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("slurmrestd: {e}"))?;
        let mut rest = RestD { child, socket };
        for _ in 0..100 {
            if std::os::unix::net::UnixStream::connect(&rest.socket).is_ok() {
                return Ok(rest);
            }
            if let Ok(Some(status)) = rest.child.try_wait() {
                return Err(format!(
                    "slurmrestd exited ({status}): {}",
                    std::fs::read_to_string(dir.join("slurmrestd.log")).unwrap_or_default().trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("slurmrestd did not listen within 5 s".into())
    }

    fn pid(&self, daemon: &str) -> Option<i32> {
        read_pid(&self.dir().join(format!("{daemon}.pid")))
    }

    /// Stops one daemon (`slurmctld`, `slurmd`, `munged`) by its PID.
    pub fn stop(&self, daemon: &str) {
        if let Some(pid) = self.pid(daemon) {
            stop_pid(pid);
        }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // Jobs first (their slurmstepd would outlive slurmd), while the controller answers.
        if self.pid("slurmctld").is_some_and(alive) && self.pid("munged").is_some_and(alive) {
            let _ = self.cmd("scancel").args(["--full", "--state=RUNNING"]).output();
            let _ = self.cmd("scancel").arg("--state=PENDING").output();
        }
        for d in ["slurmd", "slurmctld", "munged"] {
            self.stop(d);
        }
        // Jobs whose controller was already stopped: their scripts live in
        // this cluster's spool directory, under a slurmstepd.
        let spool = self.dir().join("spool").display().to_string();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if !String::from_utf8_lossy(&cmdline).contains(&spool) {
                continue;
            }
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let field = |i: usize| {
                stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(i)).and_then(|p| p.parse::<i32>().ok())
            };
            let (ppid, pgid) = (field(1), field(2));
            // SAFETY: processes of this cluster's jobs (slurmstepd ignores
            // SIGTERM); the job's group holds what its script started.
            unsafe {
                if let Some(g) = pgid.filter(|g| *g > 1 && *g != libc::getpgrp()) {
                    libc::kill(-g, libc::SIGKILL);
                }
                libc::kill(pid, libc::SIGKILL);
            }
            if let Some(ppid) = ppid
                && std::fs::read_to_string(format!("/proc/{ppid}/comm")).is_ok_and(|c| c.trim() == "slurmstepd")
            {
                // SAFETY: as above.
                unsafe { libc::kill(ppid, libc::SIGKILL) };
            }
        }
    }
}

/// An OpenSSH server on 127.0.0.1 that runs commands with `SLURM_CONF` set.
pub struct Sshd {
    dir: tempfile::TempDir,
    pid: i32,
    /// Its port.
    pub port: u16,
}

impl Sshd {
    /// Starts sshd with a fresh host key and a client key; `Err` says why it cannot.
    pub fn start(slurm_conf: &Path) -> Result<Self, String> {
        if !Path::new("/usr/sbin/sshd").exists() {
            return Err("/usr/sbin/sshd is missing: install openssh-server (.ci/run does) to run the SSH tests".into());
        }
        let dir = tempfile::Builder::new().prefix("skysshd-").tempdir_in("/tmp").map_err(|e| e.to_string())?;
        let d = dir.path();
        for key in ["hostkey", "client"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .output()
                .map_err(|e| format!("ssh-keygen: {e}"))?;
            if !out.status.success() {
                return Err(format!("ssh-keygen failed: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).map_err(|e| e.to_string())?;
        let port = free_port();
        let dp = d.display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dp}/hostkey\nAuthorizedKeysFile {dp}/authorized_keys\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {dp}/sshd.pid\n\
             PermitRootLogin prohibit-password\nSetEnv SLURM_CONF={}\nMaxSessions 50\nMaxStartups 50\n",
            slurm_conf.display()
        );
        std::fs::write(d.join("sshd_config"), config).map_err(|e| e.to_string())?;
        let _ = std::fs::create_dir_all("/run/sshd");
        let out =
            Command::new("/usr/sbin/sshd").arg("-f").arg(d.join("sshd_config")).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("sshd did not start: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        for _ in 0..100 {
            if let Some(pid) = read_pid(&d.join("sshd.pid"))
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(Self { dir, pid, port });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("sshd did not listen within 5 s".into())
    }

    /// The client's private key.
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("client")
    }

    /// A `Host` block for `~/.slurm/config` reaching this server as root.
    pub fn host_block(&self, alias: &str, known_hosts: &Path) -> String {
        format!(
            "Host {alias}\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking accept-new\n",
            self.port,
            self.key().display(),
            known_hosts.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The per-connection processes too (a client's control master keeps one).
        for child in children(self.pid) {
            stop_pid(child);
        }
        stop_pid(self.pid);
    }
}

/// A running slurmrestd; stopped by its PID when dropped.
pub struct RestD {
    child: std::process::Child,
    /// Its Unix socket.
    pub socket: PathBuf,
}

impl Drop for RestD {
    fn drop(&mut self) {
        stop_pid(self.child.id() as i32);
        let _ = self.child.wait();
    }
}
