//! `skyhost completions SHELL` and `skyhost man`, generated from the clap
//! definitions so they never drift from `--help`.

use clap::CommandFactory;

use crate::{
    cli::Cli,
    diagnostics::{Failure, print_stdout},
};

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, Failure> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "skyhost", &mut buf);
    print_stdout(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}

/// Prints the man page.
pub fn man() -> Result<u8, Failure> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| Failure::error(format!("cannot render the man page: {e}")))?;
    print_stdout(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}
