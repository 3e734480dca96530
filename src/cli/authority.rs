//! `writ authority`: manage the registry of authorities and their keys.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::audit::{Actor, ActorKind};
use crate::authority::{self, KeyAlgorithm, NewAuthority};
use crate::policy::IssuerKind;
use crate::settings::Settings;

/// `writ authority` actions.
#[derive(Debug, Subcommand)]
pub enum AuthorityAction {
    /// Register an authority.
    Add {
        /// Registry id (lowercase letters, digits, - _ .), e.g. fr-parquet-paris.
        #[arg(long)]
        id: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Country, ISO 3166-1 alpha-2 (e.g. FR).
        #[arg(long)]
        country: String,
        /// Registered kind: judge, court, investigating_judge, prosecutor, police,
        /// administrative_authority, ocda, designated_senior_officer.
        #[arg(long, value_parser = parse_kind)]
        kind: IssuerKind,
        /// Contact e-mail address (repeat for more): the only addresses notices go to.
        #[arg(long = "contact", required = true)]
        contacts: Vec<String>,
    },
    /// Add a public key (PEM SubjectPublicKeyInfo) for an authority, pinned to one algorithm.
    KeyAdd {
        /// The authority.
        authority: String,
        /// Key id (the JWT `kid`).
        #[arg(long)]
        kid: String,
        /// EdDSA, ES256 or RS256.
        #[arg(long)]
        alg: String,
        /// The public key file.
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Revoke a key: requests signed with it are refused from now on.
    KeyRevoke {
        /// Key id.
        kid: String,
    },
    /// Suspend an authority (its orders are refused) or, with --activate, reinstate it.
    Suspend {
        /// The authority.
        authority: String,
        /// Reinstate instead.
        #[arg(long)]
        activate: bool,
    },
    /// Set an authority's ETSI TS 103 120 (HI-1) identity: the sender identifier its HI-1
    /// messages carry, the instruments its tasks are decided under, and where Writ DELIVERs.
    Etsi {
        /// The authority.
        authority: String,
        /// HI-1 `CountryCode` of the sender identifier.
        #[arg(long)]
        country: String,
        /// HI-1 `UniqueIdentifier` of the sender identifier.
        #[arg(long)]
        unique_id: String,
        /// The Writ instrument its disclosure (LDTask) tasks are decided under, e.g. eu.epoc.
        #[arg(long)]
        instrument: String,
        /// The Writ instrument its preservation (LPTask) tasks are decided under, e.g.
        /// eu.epoc_pr; without it, preservation tasks from it are refused.
        #[arg(long)]
        preservation_instrument: Option<String>,
        /// The HI-1 endpoint (http or https URL) Writ DELIVERs released packages to; without
        /// it, the authority fetches deliveries with a GET.
        #[arg(long)]
        delivery_url: Option<String>,
    },
    /// Pin a TLS client identity to an authority, revoke one, or list them (mutual TLS on
    /// `server.tls.client_auth_prefixes`).
    Pin {
        /// What to do.
        #[command(subcommand)]
        action: PinAction,
    },
    /// List authorities and their keys.
    List,
}

/// `writ authority pin` actions.
#[derive(Debug, Subcommand)]
pub enum PinAction {
    /// Pin the client certificate in a PEM file (its SHA-256, or with --spki its public key's),
    /// or a SHA-256 given with --sha256, to an authority.
    Add {
        /// The authority.
        authority: String,
        /// The authority's client certificate (PEM; the first certificate counts).
        #[arg(long, conflicts_with = "sha256", required_unless_present = "sha256")]
        certificate: Option<PathBuf>,
        /// Pin the certificate's SubjectPublicKeyInfo (survives a reissue with the same key)
        /// instead of the whole certificate.
        #[arg(long)]
        spki: bool,
        /// A SHA-256 (hex, colons allowed) received out of band instead of a certificate; of
        /// the certificate, or of its SubjectPublicKeyInfo with --spki.
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Revoke a pin: connections presenting it are refused from the next request on.
    Revoke {
        /// The pin (SHA-256 hex).
        sha256: String,
    },
    /// List every pin.
    List,
}

fn parse_kind(s: &str) -> Result<IssuerKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        "expected one of judge, court, investigating_judge, prosecutor, police, administrative_authority, ocda, designated_senior_officer".to_owned()
    })
}

/// Runs the action.
pub fn run(settings: Settings, action: AuthorityAction) -> anyhow::Result<()> {
    let db = super::open_db(&settings)?;
    crate::audit::service::install_entry_key(&db, &settings.audit, true)?;
    let mut conn = db.conn()?;
    let actor = Actor::new(ActorKind::System, "cli-authority");
    match action {
        AuthorityAction::Add {
            id,
            name,
            country,
            kind,
            contacts,
        } => {
            let new = NewAuthority {
                id: id.clone(),
                name,
                country: country.to_ascii_uppercase(),
                kind,
                contacts,
            };
            authority::add(&mut conn, &actor, &new)?;
            println!("registered authority {id}");
        }
        AuthorityAction::KeyAdd {
            authority: id,
            kid,
            alg,
            public_key,
        } => {
            let pem = std::fs::read_to_string(&public_key)
                .with_context(|| format!("cannot read {}", public_key.display()))?;
            authority::add_key(
                &mut conn,
                &actor,
                &id,
                &kid,
                KeyAlgorithm::parse(&alg)?,
                &pem,
            )?;
            println!("added key {kid} ({alg}) to {id}");
        }
        AuthorityAction::KeyRevoke { kid } => {
            authority::revoke_key(&mut conn, &actor, &kid)?;
            println!("revoked key {kid}");
        }
        AuthorityAction::Suspend {
            authority: id,
            activate,
        } => {
            authority::set_active(&mut conn, &actor, &id, activate)?;
            println!(
                "{id} is now {}",
                if activate { "active" } else { "suspended" }
            );
        }
        AuthorityAction::Etsi {
            authority: id,
            country,
            unique_id,
            instrument,
            preservation_instrument,
            delivery_url,
        } => {
            authority::set_etsi(
                &mut conn,
                &actor,
                &authority::EtsiIdentity {
                    authority_id: id.clone(),
                    country_code: country.to_ascii_uppercase(),
                    unique_identifier: unique_id.clone(),
                    disclosure_instrument: instrument,
                    preservation_instrument,
                    delivery_url,
                    updated_at: chrono::Utc::now().timestamp_micros(),
                },
            )?;
            println!(
                "{id} sends HI-1 messages as {}/{unique_id}",
                country.to_ascii_uppercase()
            );
        }
        AuthorityAction::Pin { action } => pin(&mut conn, &actor, action)?,
        AuthorityAction::List => {
            for (a, keys) in authority::list(&mut conn)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    a.id, a.status, a.country, a.kind, a.name, a.contacts
                );
                for k in keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!("  key {}\t{}\t{}", k.kid, k.algorithm, state);
                }
            }
        }
    }
    Ok(())
}

fn pin(conn: &mut crate::db::DbConn, actor: &Actor, action: PinAction) -> anyhow::Result<()> {
    use crate::authority::pins::{self, PinKind};
    match action {
        PinAction::Add {
            authority: id,
            certificate,
            spki,
            sha256,
        } => {
            let kind = if spki {
                PinKind::Spki
            } else {
                PinKind::Certificate
            };
            let value = match (certificate, sha256) {
                (Some(file), _) => {
                    let path = file.display().to_string();
                    let prints = crate::pki::fingerprints_of_pem_file("--certificate", &path)?;
                    if spki {
                        prints.spki
                    } else {
                        prints.certificate
                    }
                }
                (None, Some(hash)) => hash,
                (None, None) => anyhow::bail!("give --certificate FILE or --sha256 HEX"),
            };
            let pin = pins::add(conn, actor, &id, kind, &value)?;
            println!("pinned {} {pin} to {id}", kind.as_str());
        }
        PinAction::Revoke { sha256 } => {
            pins::revoke(conn, actor, &sha256)?;
            println!("revoked pin {}", pins::normalise(&sha256)?);
        }
        PinAction::List => {
            for p in pins::list(conn)? {
                let state = if p.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{}\t{state}", p.authority_id, p.kind, p.sha256);
            }
        }
    }
    Ok(())
}
