//! An independent write load for a Redis Cluster, to judge what clustersmith does to a live
//! cluster from a client's side.
//!
//! One writer per shard (the primaries' slot ranges when the load starts) writes new keys at a
//! fixed rate, each key to a slot of its own shard, and remembers every write the cluster
//! acknowledged. When the load stops, every acknowledged write is read back. The report says:
//! - writes acknowledged, writes given up (no acknowledgement within the write timeout) and
//!   acknowledged writes that could not be read back (lost);
//! - redirections followed (`MOVED`, `ASK`): a cluster client follows these by design, so they
//!   are not errors;
//! - every other error reply or connection failure, by kind: each one was retried (after a
//!   short pause), so an error here is a retry the application would have had to make;
//! - per shard, the longest time between two acknowledged writes (the write gap).
//!
//! One writer per shard matters: a single writer stalled on one shard would stop writing to
//! all the others and make their gaps up.
//!
//! # Independence
//! Nothing here comes from clustersmith: slot hashing ([`slot`]), the slot map and the
//! redirections ([`router`]) are this crate's own. Only the RESP connection is redis-rs's
//! (synchronous, no cluster support).
//!
//! # Layout
//! - [`slot`]: key → hash slot (CRC16, hash tags).
//! - [`router`]: the slot map from `CLUSTER SLOTS`, connections per node, one command sent
//!   to the slot's owner with redirections followed and errors counted.
//! - [`load`]: the writers, the read-back and the report.

pub mod load;
pub mod router;
pub mod slot;

pub use load::{Load, LoadOptions, LoadReport, ShardReport};
pub use router::ErrorSample;
