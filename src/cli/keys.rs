//! `writ keys`: provision and show the audit checkpoint signing key, or (`--package`) the
//! disclosure-package signing key.

use anyhow::Context;
use clap::Subcommand;

use crate::audit::{Actor, ActorKind, Event, NewEntry, keys, service};
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
    /// Replace the disclosure-package signing key (`--package`): a new key signs from now on,
    /// the old public key is kept beside it (`<package.signing_key_path>.retired.pem`) and
    /// printed by `writ keys show --package`, and the rotation is an audit entry. Restart the
    /// instances afterwards so they load the new key.
    Rotate {
        /// Rotate the disclosure-package key (the only one rotatable so far).
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
            let path = &settings.package.signing_key_path;
            let public = package_keys::load(path)?.verifying_key();
            println!("key id: {}", package_keys::key_id(&public));
            print!("{}", package_keys::public_pem(&public));
            for old in package_keys::retired(path)?.iter().rev() {
                println!("retired key id: {}", package_keys::key_id(old));
                print!("{}", package_keys::public_pem(old));
            }
        }
        KeysAction::Rotate { package: false } => {
            anyhow::bail!(
                "only the package key can be rotated so far: `writ keys rotate --package` (the checkpoint key: see \"Rotate keys\" in docs/operations.md)"
            );
        }
        KeysAction::Rotate { package: true } => {
            let db = super::open_db(&settings)?;
            service::install_entry_key(&db, &settings.audit, false)?;
            let mut conn = db.conn().context("cannot connect to the database")?;
            let rotation = package_keys::prepare_rotation(&settings.package.signing_key_path)?;
            let (old, new) = (rotation.old, rotation.new);
            let entry = NewEntry::new(
                Actor::new(ActorKind::System, "cli-keys"),
                Event::PackageKeyRotated,
            )
            .reference("old_key_id", package_keys::key_id(&old))
            .reference("new_key_id", package_keys::key_id(&new));
            // The entry and the key swap together: the rename happens inside the transaction,
            // so a failed rename rolls the entry back.
            let mut rotation = Some(rotation);
            let done = crate::db::write_tx(&mut conn, |conn| -> anyhow::Result<u64> {
                let appended = crate::audit::append(conn, &entry, chrono::Utc::now())?;
                if let Some(r) = rotation.take() {
                    r.commit()?;
                }
                Ok(appended.seq)
            });
            let seq = match done {
                Ok(seq) => seq,
                Err(e) => {
                    if let Some(r) = rotation {
                        r.abandon();
                    }
                    return Err(e);
                }
            };
            println!(
                "rotated the package key: key id {} signs from now on; {} is retired and stays in {}; recorded as audit entry {seq}. Restart the instances to load the new key.",
                package_keys::key_id(&new),
                package_keys::key_id(&old),
                package_keys::retired_path(&settings.package.signing_key_path).display()
            );
            print!("{}", package_keys::public_pem(&new));
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
