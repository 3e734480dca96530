//! `writ policy`: validate policy files; explain the decision for an order.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::policy::{self, IssuerKind, Order, PolicySet, RegistryFacts};
use crate::settings::Settings;

/// `writ policy` actions.
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Validate a folder of policy files (default: the configured one).
    Check {
        /// The folder.
        dir: Option<PathBuf>,
    },
    /// Print, in plain language with citations, what the policies decide for an order.
    Explain {
        /// The order, as the intake API's JSON.
        order: PathBuf,
        /// The issuer's kind as the authority registry has it (never taken from the order).
        /// Without it, the issuer counts as unregistered.
        #[arg(long, value_parser = parse_kind)]
        issuer_kind: Option<IssuerKind>,
        /// The issuer's country as the authority registry has it (ISO 3166-1 alpha-2).
        /// Without it, the issuing authority's standing cannot be established.
        #[arg(long)]
        issuer_country: Option<String>,
        /// The validator's registered kind, if the registry knows the validator.
        #[arg(long, value_parser = parse_kind)]
        validator_kind: Option<IssuerKind>,
        /// The validation carries the validator's own registered signature.
        #[arg(long)]
        validation_signed: bool,
        /// How many earlier preservation orders under the same instrument, by the same
        /// authority, still hold the order's targets (a renewed request is an extension).
        #[arg(long, default_value_t = 0)]
        earlier_preservations: u32,
        /// When the order was received (RFC 3339; default: now). For orders by post, the true
        /// receipt date.
        #[arg(long)]
        received_at: Option<DateTime<Utc>>,
        /// The moment to decide at (RFC 3339; default: now).
        #[arg(long)]
        now: Option<DateTime<Utc>>,
        /// Print the decision as JSON instead.
        #[arg(long)]
        json: bool,
    },
}

fn parse_kind(s: &str) -> Result<IssuerKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        "expected one of judge, court, investigating_judge, prosecutor, police, administrative_authority, ocda, designated_senior_officer".to_owned()
    })
}

/// Runs the action.
pub fn run(settings: Settings, action: PolicyAction) -> anyhow::Result<()> {
    match action {
        PolicyAction::Check { dir } => {
            let set = match &dir {
                Some(d) => PolicySet::load_dir(d)?,
                None => crate::startup::load_policies(&settings.policy)?,
            };
            println!(
                "OK: {} instrument(s) and {} overlay(s) in {} jurisdiction file(s); policy set {}",
                set.instruments().count(),
                set.overlays().len(),
                set.jurisdictions().count(),
                set.id()
            );
        }
        PolicyAction::Explain {
            order,
            issuer_kind,
            issuer_country,
            validator_kind,
            validation_signed,
            earlier_preservations,
            received_at,
            now,
            json,
        } => {
            let set = crate::startup::load_policies(&settings.policy)?;
            let text = std::fs::read_to_string(&order)
                .with_context(|| format!("cannot read {}", order.display()))?;
            let order = match Order::from_json(&text) {
                Ok(o) => o,
                Err(e) => bail!("{e}"),
            };
            let facts = RegistryFacts {
                issuer_kind,
                validator_kind,
                issuer_country: issuer_country.map(|c| c.to_ascii_uppercase()),
                validation_signed_by_validator: validation_signed,
                earlier_preservations,
            };
            let now = now.unwrap_or_else(Utc::now);
            let decision = policy::decide(
                &order,
                &facts,
                received_at.unwrap_or(now),
                &[],
                &set,
                &settings.deployment,
                now,
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&decision)?);
            } else {
                print!("{}", decision.explain());
            }
        }
    }
    Ok(())
}
