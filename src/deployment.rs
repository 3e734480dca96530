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
}
