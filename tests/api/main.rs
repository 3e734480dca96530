//! Black-box tests: one integration binary, one file per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod access;
mod architecture;
mod audit;
mod authority;
mod browser;
mod cli;
mod concurrency;
mod conformance;
mod crash;
mod database;
mod durability;
mod etsi;
mod etsi_schema;
mod hardening;
mod health;
mod intake;
mod legal;
mod mail;
mod metadata;
mod metrics;
mod openapi;
mod orders;
mod package;
mod policy;
mod scale;
mod tiles;
mod workspace;
mod workspace_bugs;
mod workspace_desk;
