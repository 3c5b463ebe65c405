//! Root-cause diagnosis: rules, as data, over every piece of evidence about a cluster (live
//! views, `redis.conf`, `nodes.conf`, server logs, post-deploy logs).
//!
//! Each [`Rule`] has a stable id, a name for the problem, a severity, an explanation (what it
//! detects, why it matters, how to fix it, known false positives) and a check. A check only
//! reads [`Inputs`] and returns hits with their evidence. Rules live one family per module
//! under `rules/`, each rule's static beside its check; [`RULES`] (in `registry.rs`) lists
//! them all, in order. [`diagnose`] runs every rule and then correlates: a finding whose rule
//! *explains* another rule's finding on the same node (a missing `masterauth` explains that
//! node's replica link being down) takes that finding in as a symptom, so the report leads
//! with causes. A rule names the rules it explains by reference, so the links are checked by
//! the compiler.
//!
//! Besides the checks, every warning line of a node's server log is looked up in the servers'
//! own message catalog ([`log_catalog`]): a line that proves a rule raises it on its node, a
//! line that only hints at one joins that rule's finding when other evidence raises it, and a
//! line the catalog does not know is reported at info rather than dropped.

mod engine;
pub mod log_catalog;
mod reach;
mod registry;
mod rules;
mod vocabulary;

pub use engine::{diagnose, rule_hits, worst};
pub use registry::{RULES, rule};
pub use rules::membership::peers_cleared_on_relook;
pub use vocabulary::*;

pub(crate) use vocabulary::live;

#[cfg(test)]
mod tests;
