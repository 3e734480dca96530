//! The deployment's own legal position: facts about the provider, configured per installation.
//!
//! Ground level, below both the settings (which load it) and the policy engine (which decides
//! with it): it imports nothing of Writ's.

use serde::{Deserialize, Serialize};

/// The deployment's own legal position, configured per installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// ISO 3166-1 alpha-2 code of the provider's main establishment (e.g. "IE", "US", "GB").
    pub establishment: String,
    /// Countries where the provider has designated a legal representative (e.g. under Directive
    /// (EU) 2023/1544); they count like an establishment for instruments that bind there.
    #[serde(default)]
    pub legal_representative_in: Vec<String>,
    /// Whether the provider offers an intermediary service within the Digital Services Act
    /// (which makes the DSA Art 10 overlay apply to member-state orders).
    #[serde(default)]
    pub dsa_intermediary: bool,
    /// How the provider is classified under German law (TKG interpersonal communications
    /// service or TDDDG digital service); it picks the German basis (StPO §100g or §100k) and
    /// the provider's secrecy provision. Unset: German orders relying on it need judgement.
    #[serde(default)]
    pub service_class: Option<ServiceClass>,
    /// Countries (ISO 3166-1 alpha-2) where the provider offers its service to the public; some
    /// laws bind such a provider without an establishment (e.g. Marco Civil art 11).
    #[serde(default)]
    pub offers_service_in: Vec<String>,
}

/// How a provider is classified under German law (a deployment setting).
///
/// `interpersonal_communications`: a number-independent interpersonal communications service
/// (TKG §3 Nr. 24, 61): traffic data under StPO §100g, subscriber data under TKG §174;
/// `digital_service`: a digital service under the TDDDG: usage data under StPO §100k,
/// subscriber data under TDDDG §22-24.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ServiceClass {
    /// A number-independent interpersonal communications service (TKG).
    InterpersonalCommunications,
    /// A digital service (TDDDG).
    DigitalService,
}

impl ServiceClass {
    /// The identifier used in JSON and TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceClass::InterpersonalCommunications => "interpersonal_communications",
            ServiceClass::DigitalService => "digital_service",
        }
    }
}
