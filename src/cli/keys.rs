//! `writ keys`: provision and show the audit checkpoint signing key, or (`--package`) the
//! disclosure-package signing key.

use anyhow::Context;
use clap::Subcommand;

use crate::audit::{keys, service};
use crate::disclosure::keys as package_keys;
use crate::settings::Settings;

/// `writ keys` actions.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create the audit keys (mode 0600): the checkpoint key at audit.signing_key_path (refuses
    /// to replace one) and the entry key at audit.entry_key_path (an existing one is kept).
    Init {
        /// Create the disclosure-package signing key at package.signing_key_path instead.
        #[arg(long, conflicts_with = "entry")]
        package: bool,
        /// Create only the entry key (upgrading a deployment whose checkpoint key exists).
        #[arg(long)]
        entry: bool,
    },
    /// Print the log origin, the note verifier key and the public key (PEM).
    Show {
        /// Print the disclosure-package key's id and public key (PEM) instead.
        #[arg(long)]
        package: bool,
    },
}

/// Runs the action.
pub fn run(settings: Settings, action: KeysAction) -> anyhow::Result<()> {
    match action {
        KeysAction::Init { package: true, .. } => {
            let path = &settings.package.signing_key_path;
            let public = package_keys::init(path)?;
            println!(
                "created {} (mode 0600); key id {}; give authorities the public key below",
                path.display(),
                package_keys::key_id(&public)
            );
            print!("{}", package_keys::public_pem(&public));
        }
        KeysAction::Show { package: true } => {
            let public = package_keys::load(&settings.package.signing_key_path)?.verifying_key();
            println!("key id: {}", package_keys::key_id(&public));
            print!("{}", package_keys::public_pem(&public));
        }
        KeysAction::Init {
            package: false,
            entry,
        } => {
            if !entry {
                let public = keys::init(&settings.audit.signing_key_path)?;
                println!(
                    "created the checkpoint key {} (mode 0600); share it with every Writ instance, and nothing else",
                    settings.audit.signing_key_path.display()
                );
                print!("{}", keys::public_pem(&public));
            }
            let path = &settings.audit.entry_key_path;
            if !entry && keys::exists(path) {
                // Made already (by a command that appended first); never replaced.
                println!("kept the existing entry key {}", path.display());
                return Ok(());
            }
            let public = keys::init(path)?;
            println!(
                "created the entry key {} (mode 0600); share it with every Writ instance, and nothing else",
                path.display()
            );
            print!("{}", keys::public_pem(&public));
        }
        KeysAction::Show { package: false } => {
            let db = super::open_db(&settings)?;
            let mut conn = db.conn().context("cannot connect to the database")?;
            let signer = service::load_signer(&settings.audit, &mut conn, false)?;
            println!("origin: {}", signer.origin());
            println!("note verifier key: {}", signer.verifier_key());
            print!("{}", keys::public_pem(&signer.public_key()));
            println!("entry note verifier key: {}", signer.entry_verifier_key());
            print!("{}", keys::public_pem(&signer.entry_public_key()));
        }
    }
    Ok(())
}
