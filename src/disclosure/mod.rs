//! Disclosure packages: what leaves Writ once an order is approved, and only that.
//!
//! - [`package`]: builds the signed package from the permitted tables (refusing any field the
//!   scope decision does not release), adds the audit proof, and verifies a package offline.
//! - [`keys`]: the package signing key file and its public key id.
//! - [`tar`]: the small, deterministic ustar writer and the strict reader packages use.
//! - [`certificate`]: the records certificate (who produced the records, from which systems,
//!   when), signed with the package key, and its offline check.
//! - [`gather`]: the records of a release, from the store, only the permitted fields.
//!
//! Approving and releasing an order is a step of the order's life: `orders::approval`.

pub mod certificate;
pub mod gather;
pub mod keys;
pub mod package;
pub mod tar;
