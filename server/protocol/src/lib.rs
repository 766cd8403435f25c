//! Wire types and code rules shared by the TraitorTrack server and its stations.
//!
//! This crate stays small on purpose: serde, regex, time and uuid, nothing that
//! talks to a database or the network.

pub mod codes;
pub mod wire;

pub use codes::{normalize, CodeError, CodeKind, FormatSpec, Formats, ParentFormatSpec};
pub use wire::*;
