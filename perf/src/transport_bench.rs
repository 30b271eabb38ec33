//! Placeholder until the subcommand is built.

/// Options of this subcommand.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("this benchmark is not built yet")
}
