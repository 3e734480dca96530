//! EU e-Evidence (Regulation (EU) 2023/1543) over ETSI TS 104 144, the e-Evidence profile of
//! TS 103 120 (HI-1).
//!
//! The national system's interface calls Writ at `/eevidence/{endpoint}` ([`Endpoint`]): each
//! call is an `HI1Message` read by the strict HI-1 parser and answered synchronously by
//! [`crate::etsi::service`] with this module's [`inbound::EevidenceProfile`] layered on it, so
//! that every message is kept, audited and idempotent on its transaction identifier exactly as
//! at `/etsi/hi1`. Each order's lifecycle is `orders::eevidence` (the release path consults
//! it); Writ's calls back ([`outbox`]) are queued in the transaction of the step that causes
//! them and sent under a lease until the system acknowledges them.
//!
//! The endpoint names, the carriers of each event and the dictionary values come from
//! secondary material (EEVIDENCE.md, section 2).
// EEVIDENCE.md [T?]: check against TS 104 144

pub mod authorities;
pub mod epoc;
pub mod form3;
pub mod inbound;
pub mod outbox;

/// An inbound endpoint (the national system calls Writ), EEVIDENCE.md section 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A European Production Order (EPOC, Form 1).
    Production,
    /// A European Preservation Order (EPOC-PR, Form 2).
    Preservation,
    /// The enforcing authority's decision: no, partial or full grounds for refusal.
    GroundsForRefusal,
    /// Form 5: a subsequent production request was issued for preserved data.
    SubsequentProduction,
    /// Form 6: preservation extended by 30 days.
    PreservationExtension,
    /// The issuing authority ends preservation.
    EndPreservation,
    /// The issuing authority sets a new deadline.
    NewDeadline,
    /// The issuing authority withdraws the order.
    Withdraw,
    /// The issuing authority's acknowledgement of a delivery (`Received` / `Error`).
    DeliveryStatus,
    /// Correspondence from the issuing or enforcing authority.
    Correspondence,
}

impl Endpoint {
    /// Every inbound endpoint.
    pub const ALL: &'static [Endpoint] = &[
        Endpoint::Production,
        Endpoint::Preservation,
        Endpoint::GroundsForRefusal,
        Endpoint::SubsequentProduction,
        Endpoint::PreservationExtension,
        Endpoint::EndPreservation,
        Endpoint::NewDeadline,
        Endpoint::Withdraw,
        Endpoint::DeliveryStatus,
        Endpoint::Correspondence,
    ];

    /// The path segment after `/eevidence/`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Production => "production",
            Endpoint::Preservation => "preservation",
            Endpoint::GroundsForRefusal => "groundsforrefusal",
            Endpoint::SubsequentProduction => "subsequentproduction",
            Endpoint::PreservationExtension => "preservationextension",
            Endpoint::EndPreservation => "endpreservation",
            Endpoint::NewDeadline => "newdeadline",
            Endpoint::Withdraw => "withdraw",
            Endpoint::DeliveryStatus => "deliverystatus",
            Endpoint::Correspondence => "correspondence",
        }
    }

    /// Parses a path segment.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.path() == s)
    }

    /// What the endpoint takes, in words (for errors naming what is wrong).
    pub fn takes(self) -> &'static str {
        match self {
            Endpoint::Production => {
                "CREATE of an AuthorisationObject (EPOC), LDTaskObjects and DocumentObjects (Form 1)"
            }
            Endpoint::Preservation => {
                "CREATE of an AuthorisationObject (EPOCPR), LPTaskObjects and DocumentObjects (Form 2)"
            }
            Endpoint::GroundsForRefusal => {
                "CREATE of a DocumentObject of EPOCDocumentType NoGroundsForRefusal, PartialGroundsForRefusal or FullGroundsForRefusal naming the authorisation (and, when partial, the refused LDTasks)"
            }
            Endpoint::SubsequentProduction => {
                "UPDATE of an LPTaskObject (Form 5), with an optional CREATE of its DocumentObject"
            }
            Endpoint::PreservationExtension => {
                "UPDATE of an LPTaskObject with DesiredPreservationExpiration (Form 6), with an optional CREATE of its DocumentObject"
            }
            Endpoint::EndPreservation => "UPDATE of an LPTaskObject",
            Endpoint::NewDeadline => "UPDATE of an LDTaskObject with Deadlines/LDDeadline",
            Endpoint::Withdraw => "UPDATE of an AuthorisationObject with DesiredStatus Cancelled",
            Endpoint::DeliveryStatus => {
                "UPDATE of a DeliveryObject with DeliveryStatus Received or Error"
            }
            Endpoint::Correspondence => {
                "CREATE of a DocumentObject of an EPOCDocumentType naming the authorisation"
            }
        }
    }
}
