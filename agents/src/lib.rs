//! squad-agents: the crew. One module per member — charter, the messages it accepts, its
//! deterministic skills, and its handler — plus the factory the supervisor starts them with.
//!
//! Members talk through typed messages: Picard sends [`squad_protocols::Assignment`]s to the
//! others through the [`squad_runtime::CrewDirectory`] and gets [`squad_protocols::Report`]s back.
//! Every side effect goes through the [`squad_runtime::Journal`], so it happens once.

// Nested `if let` over awaited reads reads more plainly than let-chains here.
#![allow(clippy::collapsible_if)]

pub mod belanna;
pub mod context;
pub mod data;
pub mod effects;
pub mod factory;
pub mod memory;
pub mod mind;
pub mod picard;
pub mod ralph;
pub mod scribe;
pub mod specialist;
pub mod walk;
pub mod worf;

pub use context::CrewContext;
pub use factory::CrewFactory;
pub use picard::{PicardHandle, PicardMsg};
