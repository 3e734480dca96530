//! Writ: lawful-disclosure request handling.
//!
//! Orders from public authorities come in, are checked against a jurisdiction policy engine,
//! are reviewed and approved by two people, and only the metadata the policy permits is
//! released; every step lands in a tamper-evident audit log. See README.md for the tour.
//!
//! The crate is a library with a thin binary (`src/main.rs`); modules are named after the
//! domain.

pub mod audit;
pub mod authority;
pub mod cli;
pub mod db;
pub mod deployment;
pub mod digest;
pub mod disclosure;
pub mod eevidence;
pub mod etsi;
pub mod failpoint;
pub mod jobs;
pub mod json;
pub mod keystore;
pub mod mail;
pub mod metadata;
pub mod net;
pub mod orders;
pub mod pki;
pub mod policy;
pub mod settings;
pub mod staff;
pub mod startup;
pub mod telemetry;
pub mod text;
pub mod transparency;
pub mod web;
