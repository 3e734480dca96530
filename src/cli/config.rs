//! `writ config`: check the configuration, or print it with secrets redacted.

use clap::Args;

use crate::settings::Settings;

/// Arguments of `writ config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Print the effective settings as TOML (secrets redacted) instead of only checking them.
    #[arg(long)]
    pub show: bool,
}

/// Loading already validated the settings; report or print them.
pub fn run(settings: &Settings, args: &ConfigArgs) -> anyhow::Result<()> {
    if args.show {
        print!("{}", settings.to_redacted_toml());
    } else {
        println!(
            "configuration is valid (database backend: {})",
            settings.database.url.backend()
        );
    }
    Ok(())
}
