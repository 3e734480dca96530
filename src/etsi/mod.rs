//! Standards-based exchange: ETSI TS 103 120 (HI-1) messages in and out.
//!
//! An authority's system sends an `HI1Message` (XML) to `POST /etsi/hi1`, signed with the same
//! body-bound token as the JSON API (the signed body is the XML). Writ parses it strictly
//! ([`parse`]: no DTDs, bounded size and depth, unknown elements refused with their path),
//! turns disclosure and preservation tasks into Writ orders ([`map`]), answers each action in the
//! standard's response message ([`write`]), and delivers released packages back as
//! `DeliveryObject`s ([`deliver`]).

pub mod deliver;
pub mod map;
pub mod model;
mod parse;
pub mod service;
mod write;
mod xml;

pub use parse::{Limits, ParseError, parse};
pub use write::write;
