//! The rules, one module per family: each rule's identity and explanation (a [`Rule`] static)
//! beside the check that finds its hits. A check only reads [`Inputs`] and returns its hits
//! with evidence. Server wording differs between Redis and Valkey (`MASTER` / `PRIMARY`), so
//! log matchers accept both. A rule names the rules it explains by reference, so the compiler
//! checks every link; [`RULES`](super::RULES) lists them all in their documented order.
//!
//! [`Rule`]: super::Rule
//! [`Inputs`]: super::Inputs

mod common;

pub(super) mod at_work;
pub(super) mod balance;
pub(super) mod catalog;
pub(super) mod clients;
pub(super) mod cross_node;
pub(super) mod departed;
pub(super) mod environment;
pub(super) mod failover;
pub(super) mod formation;
pub(super) mod identity;
pub(super) mod membership;
pub(super) mod node_facts;
pub(super) mod replication;
pub(super) mod server_config;
pub(super) mod sync_loop;
