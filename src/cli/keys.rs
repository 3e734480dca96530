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
        /// Create only the entry key (upgrading a deployment whose checkpoint key exists); in
        /// the PKCS#11 token with --pkcs11 or `audit.entry_key = "pkcs11"`.
        #[arg(long)]
        entry: bool,
        /// Generate the checkpoint key (with --entry the entry key, with --package the package
        /// key) in the PKCS#11 token that [audit.pkcs11] ([audit.entry_pkcs11],
        /// [package.pkcs11]) names; it never leaves the token.
        #[arg(long)]
        pkcs11: bool,
    },
    /// Replace the checkpoint key: a new key (audit.signing_key_path) signs every checkpoint
    /// after the rotation entry, which the old key signs last; the old public key stays in the
    /// log and is printed by `writ keys show` with the sizes it signed. With `--package`,
    /// replace the disclosure-package key instead: the old public key is kept beside it
    /// (`<package.signing_key_path>.retired.pem`) and printed by `writ keys show --package`; a
    /// package key in a PKCS#11 token is replaced in the token (the old pair is renamed
    /// `<key_label>.retired-<key id>`, the new one takes `key_label`). Either rotation is an audit entry. Restart the instances afterwards so they load the new
    /// key (until then the checkpoint key's holders cannot sign).
    Rotate {
        /// Rotate the disclosure-package key instead of the checkpoint key.
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

/// `writ keys rotate`: a new checkpoint key file is staged beside the current one; the
/// rotation entry and the old key's last checkpoint are written in one transaction, which
/// also renames the new key into place.
fn rotate_checkpoint_key(settings: &Settings) -> anyhow::Result<()> {
    let db = super::open_db(settings)?;
    let mut conn = db.conn().context("cannot connect to the database")?;
    let signer = service::load_signer(&settings.audit, &mut conn, false)?;
    db.install_audit_entry_key(signer.entry_signing_key());
    if settings.audit.signing_key == crate::settings::KeyLocation::Pkcs11 {
        return rotate_checkpoint_key_in_token(settings, &db, &signer);
    }
    let path = &settings.audit.signing_key_path;
    let mut name = path.as_os_str().to_owned();
    name.push(".next");
    let staged = std::path::PathBuf::from(name);
    if staged.exists() {
        anyhow::bail!(
            "{} exists: an earlier rotation did not finish; remove it and rotate again",
            staged.display()
        );
    }
    let new = keys::init(&staged)?;
    let mut conn = db.conn().context("cannot connect to the database")?;
    let rotated = crate::audit::checkpoint::rotate(
        &mut conn,
        &signer,
        new,
        Actor::new(ActorKind::System, "cli-keys"),
        chrono::Utc::now(),
        || {
            std::fs::rename(&staged, path)
                .map_err(|e| crate::audit::AuditError::Key(format!("{}: {e}", path.display())))
        },
    );
    let rotated = match rotated {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e.into());
        }
    };
    println!(
        "rotated the checkpoint key: recorded as audit entry {}; the old key signed its last checkpoint (size {}), and the new key signs every larger one. Restart the instances to load the new key.",
        rotated.seq, rotated.last_old.size
    );
    print!("{}", keys::public_pem(&new));
    Ok(())
}

/// `writ keys rotate` with the checkpoint key in a PKCS#11 token: the new key pair is generated
/// in the token (`<key_label>.next`); the rotation's transaction (as for a key file) renames the
/// old pair `<key_label>.retired-<first 16 hex digits of its public key>` and the new one
/// `<key_label>`, so the settings keep naming the same label.
fn rotate_checkpoint_key_in_token(
    settings: &Settings,
    db: &crate::db::Db,
    signer: &crate::audit::checkpoint::CheckpointSigner,
) -> anyhow::Result<()> {
    let config = settings
        .audit
        .pkcs11
        .token_config()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let staged = crate::keystore::TokenRotation::prepare(&config, |old| {
        format!(
            "{}.retired-{}",
            config.key_label,
            hex::encode(&old.as_bytes()[..8])
        )
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut conn = db.conn().context("cannot connect to the database")?;
    let rotated = crate::audit::checkpoint::rotate(
        &mut conn,
        signer,
        staged.new,
        Actor::new(ActorKind::System, "cli-keys"),
        chrono::Utc::now(),
        || {
            staged
                .commit()
                .map_err(|e| crate::audit::AuditError::Key(e.to_string()))
        },
    );
    let rotated = match rotated {
        Ok(r) => r,
        Err(e) => {
            staged.abandon();
            return Err(e.into());
        }
    };
    println!(
        "rotated the checkpoint key in PKCS#11 token `{}`: recorded as audit entry {}; the old key (now `{}.retired-…` in the token) signed its last checkpoint (size {}), and the new key signs every larger one. Restart the instances to load the new key.",
        config.token_label, rotated.seq, config.key_label, rotated.last_old.size
    );
    print!("{}", keys::public_pem(&staged.new));
    Ok(())
}

/// Creates the entry key unless it exists (made already by a command that appended first; never
/// replaced): a file every instance signs each entry with as it appends, or, with
/// `audit.entry_key = "pkcs11"`, a key pair in the token (kept when the token has it).
fn init_entry_key(settings: &Settings) -> anyhow::Result<()> {
    if settings.audit.entry_key == crate::settings::KeyLocation::Pkcs11 {
        let config = settings
            .audit
            .entry_pkcs11
            .token_config()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = crate::keystore::Key::token(config);
        if key.probe().is_ok() {
            println!("kept the existing entry key: {}", key.describe());
            return Ok(());
        }
        return generate_entry_key_in_token(settings);
    }
    let path = &settings.audit.entry_key_path;
    if keys::exists(path) {
        println!("kept the existing entry key {}", path.display());
        return Ok(());
    }
    let public = keys::init(path)?;
    println!(
        "created the entry key {} (mode 0600); share it with every Writ instance, and nothing else",
        path.display()
    );
    print!("{}", keys::public_pem(&public));
    Ok(())
}

/// `writ keys init --entry --pkcs11`: the entry key generated in the token
/// `[audit.entry_pkcs11]` names, sensitive and not extractable (refused when one exists).
fn generate_entry_key_in_token(settings: &Settings) -> anyhow::Result<()> {
    let config = settings
        .audit
        .entry_pkcs11
        .token_config()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let public = crate::keystore::generate(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "generated the entry key `{}` in PKCS#11 token `{}` (it cannot be exported); every instance signs each entry in the token as it appends",
        config.key_label, config.token_label
    );
    print!("{}", keys::public_pem(&public));
    if settings.audit.entry_key != crate::settings::KeyLocation::Pkcs11 {
        println!("now set audit.entry_key = \"pkcs11\" so that Writ signs entries with it");
    }
    Ok(())
}

fn warn_unless_pkcs11(location: crate::settings::KeyLocation, section: &str) {
    if location != crate::settings::KeyLocation::Pkcs11 {
        println!("now set {section}.signing_key = \"pkcs11\" so that Writ signs with it");
    }
}

/// Runs the action.
pub fn run(settings: Settings, action: KeysAction) -> anyhow::Result<()> {
    match action {
        KeysAction::Init {
            package: true,
            pkcs11: true,
            ..
        } => {
            let public = package_keys::init_in_token(&settings.package)?;
            println!(
                "generated the package key `{}` in PKCS#11 token `{}` (it cannot be exported); key id {}; give authorities the public key below",
                settings.package.pkcs11.key_label,
                settings.package.pkcs11.token_label,
                package_keys::key_id(&public)
            );
            print!("{}", package_keys::public_pem(&public));
            warn_unless_pkcs11(settings.package.signing_key, "package");
        }
        KeysAction::Init {
            package: false,
            entry: true,
            pkcs11,
        } if pkcs11 || settings.audit.entry_key == crate::settings::KeyLocation::Pkcs11 => {
            generate_entry_key_in_token(&settings)?;
        }
        KeysAction::Init {
            package: false,
            pkcs11: true,
            ..
        } => {
            let config = settings
                .audit
                .pkcs11
                .token_config()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let public = crate::keystore::generate(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "generated the checkpoint key `{}` in PKCS#11 token `{}` (it cannot be exported)",
                config.key_label, config.token_label
            );
            print!("{}", keys::public_pem(&public));
            warn_unless_pkcs11(settings.audit.signing_key, "audit");
            init_entry_key(&settings)?;
        }
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
            let public = package_keys::signing_key(&settings.package)?
                .public()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("key id: {}", package_keys::key_id(&public));
            print!("{}", package_keys::public_pem(&public));
            for old in package_keys::retired(path)?.iter().rev() {
                println!("retired key id: {}", package_keys::key_id(old));
                print!("{}", package_keys::public_pem(old));
            }
        }
        KeysAction::Rotate { package: false } => rotate_checkpoint_key(&settings)?,
        KeysAction::Rotate { package: true } => {
            let db = super::open_db(&settings)?;
            service::install_entry_key(&db, &settings.audit, false)?;
            let mut conn = db.conn().context("cannot connect to the database")?;
            let in_token = settings.package.signing_key == crate::settings::KeyLocation::Pkcs11;
            let rotation = if in_token {
                package_keys::prepare_token_rotation(&settings.package)?
            } else {
                package_keys::prepare_rotation(&settings.package.signing_key_path)?
            };
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
            ..
        } => {
            if !entry {
                let public = keys::init(&settings.audit.signing_key_path)?;
                println!(
                    "created the checkpoint key {} (mode 0600); share it with every Writ instance, and nothing else",
                    settings.audit.signing_key_path.display()
                );
                print!("{}", keys::public_pem(&public));
            }
            if entry {
                let path = &settings.audit.entry_key_path;
                let public = keys::init(path)?;
                println!(
                    "created the entry key {} (mode 0600); share it with every Writ instance, and nothing else",
                    path.display()
                );
                print!("{}", keys::public_pem(&public));
            } else {
                init_entry_key(&settings)?;
            }
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
            // Last, so that everything after the heading is the key set file.
            let set = signer.keys();
            if set.periods().len() > 1 {
                println!(
                    "checkpoint keys with the sizes each signs (`writ audit verify EXPORT --key FILE` reads these lines):"
                );
                print!("{}", set.to_text());
            }
        }
    }
    Ok(())
}
