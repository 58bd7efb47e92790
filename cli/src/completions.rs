//! `cocoon completions <shell>`: shell completion scripts on stdout.

use std::io::Write;

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Print a shell completion script (e.g. `cocoon completions bash > /etc/bash_completion.d/cocoon`).
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script for `C` to stdout.
pub(crate) fn run<C: CommandFactory>(args: CompletionsArgs) -> Result<()> {
    let mut cmd = C::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "cocoon", &mut script);
    // Written by us, not by clap_complete, so that a closed pipe is an error instead of a panic.
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(())
}
