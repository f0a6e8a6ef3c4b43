//! Starts the test Slurm cluster and an sshd (the fixtures of the Slurm
//! tests) for `bench/run slurm`; prints `ready SLURM_CONF SSH_CONFIG_BLOCK_FILE`
//! and stops everything when stdin closes.

use std::io::Read;

fn main() {
    let slurm = match skyhost_e2e::slurm::Slurm::start() {
        Ok(s) => s,
        Err(why) => {
            println!("unavailable {why}");
            return;
        }
    };
    let sshd = match skyhost_e2e::slurm::Sshd::start(&slurm.conf()) {
        Ok(s) => s,
        Err(why) => {
            println!("unavailable {why}");
            return;
        }
    };
    slurm.hold("gpu:h100:3", "root");
    slurm.wait_gres_used("gpu:h100:3");
    let block = slurm.dir().join("ssh_config");
    std::fs::write(&block, sshd.host_block("bench", &slurm.dir().join("known_hosts"))).expect("write");
    println!("ready {} {}", slurm.conf().display(), block.display());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
