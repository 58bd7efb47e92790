//! `cocoon completions <shell>`: shell completion scripts on stdout.

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
    clap_complete::generate(args.shell, &mut cmd, "cocoon", &mut std::io::stdout());
    Ok(())
}
