//! `writ keys`: provision and show the audit checkpoint signing key, or (`--package`) the
//! disclosure-package signing key.

use anyhow::Context;
use clap::Subcommand;

use crate::audit::{keys, service};
use crate::db::Db;
use crate::disclosure::keys as package_keys;
use crate::settings::Settings;

/// `writ keys` actions.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create the signing key at audit.signing_key_path (mode 0600); refuses to replace one.
    Init {
        /// Create the disclosure-package signing key at package.signing_key_path instead.
        #[arg(long)]
        package: bool,
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
        KeysAction::Init { package: true } => {
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
        KeysAction::Init { package: false } => {
            let public = keys::init(&settings.audit.signing_key_path)?;
            println!(
                "created {} (mode 0600); share it with every Writ instance, and nothing else",
                settings.audit.signing_key_path.display()
            );
            print!("{}", keys::public_pem(&public));
        }
        KeysAction::Show { package: false } => {
            let db = Db::open(&settings.database).context("cannot open the database")?;
            let mut conn = db.conn().context("cannot connect to the database")?;
            let signer = service::load_signer(&settings.audit, &mut conn, false)?;
            println!("origin: {}", signer.origin());
            println!("note verifier key: {}", signer.verifier_key());
            print!("{}", keys::public_pem(&signer.public_key()));
        }
    }
    Ok(())
}
