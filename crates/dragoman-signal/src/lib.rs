//! Control plane of the Dragoman SFU.
//!
//! This crate decides *who may and should receive what*: calls and their participants, roles and
//! permissions, join tokens, and the signaling protocol with its per-connection state machine. It does no
//! I/O; the server feeds it messages and carries out what it decides. The media plane
//! (`dragoman-media`) only applies the decisions.

pub mod call;
pub mod error;
pub mod negotiation;
pub mod protocol;
pub mod quality;
pub mod role;
pub mod routing;
pub mod token;

pub use error::{ErrorCode, SignalError};
pub use role::{Permissions, Role};
