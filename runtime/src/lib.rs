//! squad-runtime: the actor plumbing squad's crew runs on.
//!
//! - [`adapter`]: adapters as supervised actors; the port a member calls is an actor's handle.
//! - [`clock`]: time through tokio, so a simulation can run hours of virtual time in milliseconds.
//! - [`store`]: the incident store, an append-only event log (durable redb file, or in memory).
//! - [`journal`]: exactly-once side effects on top of the log.
//! - [`ports`]: the traits the crew talks to the world through (cluster, forge, diagnoser).
//! - [`supervisor`]: one-for-one supervision of the crew with restart intensity and backoff.
//! - [`reconcile`]: the controller half of the crew's loop: in-flight work, retries, backoff,
//!   the error policy over [`CrewError`].
//! - [`crew`]: the messages crew actors accept and the directory that finds them.
//! - [`faults`]: fault injection for tests (panics in members, crashes after N events).
//! - [`minds`]: the crew's models behind the redaction gateway.
//! - [`redact`]: the redactor the gateway uses.
//! - [`shards`]: how replicas share the work: shards by workload, each under a lease.

pub mod adapter;
pub mod clock;
pub mod crew;
pub mod dry_run;
pub mod error;
pub mod faults;
pub mod journal;
pub mod minds;
pub mod ports;
pub mod reconcile;
pub mod redact;
pub mod shards;
pub mod store;
pub mod supervisor;

pub use clock::Clock;
pub use crew::{CrewDirectory, CrewMsg, Wakeups};
pub use error::{AskError, CrewError};
pub use faults::Faults;
pub use journal::Journal;
pub use minds::{Minds, Model, ModelInfo};
pub use redact::{RedactError, Redactor};
pub use store::{Accepted, Fence, IncidentStore, MemoryStore, RedbStore, StagedAlerts, StoreError};
