//! `writ token`: the authority's side, as a reference signer: make a key, build a submission,
//! sign a validator's signature over an order, and sign a body-bound request token.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::authority::KeyAlgorithm;
use crate::authority::client::{self, TokenRequest};

/// `writ token` actions.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make an Ed25519 key pair: the private key (PKCS#8 PEM, mode 0600) goes to --out, the
    /// public key (to register with `writ authority key-add`) to standard output.
    Keygen {
        /// Where to write the private key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Build the body of POST /api/v1/orders from an order file and its signed PDF.
    Submission {
        /// The order JSON file (embedded verbatim: its SHA-256 is the order digest).
        #[arg(long)]
        order: PathBuf,
        /// The signed order document (PDF).
        #[arg(long)]
        document: PathBuf,
        /// The validator's signature (from `writ token validate`), if any.
        #[arg(long)]
        validation: Option<String>,
    },
    /// Sign, as the validating authority, the digest of an order file.
    Validate {
        /// The validator's private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// EdDSA, ES256 or RS256 (as registered for the key).
        #[arg(long, default_value = "EdDSA")]
        alg: String,
        /// The key id registered for the validator.
        #[arg(long)]
        kid: String,
        /// The validator's registry id.
        #[arg(long)]
        iss: String,
        /// The registry id of the authority that will submit the order (`aud`): Writ refuses
        /// the signature from any other authority.
        #[arg(long)]
        aud: String,
        /// Seconds the submitter has to submit it (`exp` - `iat`); after that Writ refuses it.
        #[arg(long, default_value_t = 7 * 24 * 3600)]
        lifetime: i64,
        /// The order JSON file, exactly as it will be submitted.
        #[arg(long)]
        order: PathBuf,
    },
    /// Sign a body-bound request token for one request.
    Sign {
        /// The authority's private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// EdDSA, ES256 or RS256 (as registered for the key).
        #[arg(long, default_value = "EdDSA")]
        alg: String,
        /// The key id registered for the authority.
        #[arg(long)]
        kid: String,
        /// The authority's registry id.
        #[arg(long)]
        iss: String,
        /// The deployment's audience (GET /api/v1 shows it).
        #[arg(long)]
        aud: String,
        /// HTTP method.
        #[arg(long, default_value = "POST")]
        method: String,
        /// Path with query, e.g. /api/v1/orders.
        #[arg(long)]
        path: String,
        /// The exact request body (omit for an empty body).
        #[arg(long)]
        body: Option<PathBuf>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 120)]
        lifetime: i64,
    },
}

fn read_text(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Runs a `writ token` action.
pub fn run(action: TokenAction) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp();
    match action {
        TokenAction::Keygen { out } => {
            let public = crate::audit::keys::init(&out)?;
            print!("{}", crate::audit::keys::public_pem(&public));
            eprintln!(
                "writ: private key written to {} (keep it secret; register the public key printed above)",
                out.display()
            );
        }
        TokenAction::Submission {
            order,
            document,
            validation,
        } => {
            let order = read_text(&order)?;
            let pdf = std::fs::read(&document)
                .with_context(|| format!("cannot read {}", document.display()))?;
            println!(
                "{}",
                client::submission_body(&order, &pdf, validation.as_deref())?
            );
        }
        TokenAction::Validate {
            key,
            alg,
            kid,
            iss,
            aud,
            lifetime,
            order,
        } => {
            let alg = KeyAlgorithm::parse(&alg)?;
            let order = read_text(&order)?;
            if lifetime <= 0 {
                anyhow::bail!("--lifetime must be a positive number of seconds");
            }
            println!(
                "{}",
                client::sign_validation(
                    alg,
                    &read_text(&key)?,
                    &kid,
                    &client::ValidationRequest {
                        validator: &iss,
                        submitter: Some(&aud),
                        order_json: order.trim(),
                        now,
                        lifetime_secs: lifetime,
                    }
                )?
            );
        }
        TokenAction::Sign {
            key,
            alg,
            kid,
            iss,
            aud,
            method,
            path,
            body,
            lifetime,
        } => {
            let alg = KeyAlgorithm::parse(&alg)?;
            let body = match body {
                Some(p) => {
                    std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?
                }
                None => Vec::new(),
            };
            let token = client::sign_request(
                alg,
                &read_text(&key)?,
                &kid,
                &TokenRequest {
                    issuer: &iss,
                    audience: &aud,
                    method: &method,
                    path: &path,
                    body: &body,
                    now,
                    lifetime_secs: lifetime,
                },
            )?;
            println!("{token}");
        }
    }
    Ok(())
}
