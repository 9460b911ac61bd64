//! Generated documentation: shell completions and man pages, rendered from the clap tree.
//! `completions/` and `man/` in the repository are these outputs, checked fresh by a test.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell as CompleteShell;

use crate::cli::{Cli, CompletionsArgs, ManArgs, Shell};

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    if let Some(dir) = args.out_dir {
        std::fs::create_dir_all(&dir)?;
        for shell in [CompleteShell::Bash, CompleteShell::Zsh, CompleteShell::Fish] {
            clap_complete::generate_to(shell, &mut Cli::command(), "registry", &dir)?;
        }
        return Ok(());
    }
    let shell = match args.shell {
        Some(Shell::Bash) | None => CompleteShell::Bash,
        Some(Shell::Zsh) => CompleteShell::Zsh,
        Some(Shell::Fish) => CompleteShell::Fish,
    };
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "registry",
        &mut std::io::stdout(),
    );
    Ok(())
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let command = Cli::command();
    match args.out_dir {
        Some(dir) => write_pages(&command, &dir),
        None => Ok(clap_mangen::Man::new(command).render(&mut std::io::stdout())?),
    }
}

fn write_pages(command: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(command.clone(), dir)?;
    Ok(())
}
