//! The TraitorTrack station's core: scanner input, the durable outbox, sync
//! with the server, and sounds. No Tauri here: the desktop app is a thin
//! shell over this crate.

pub mod boot_keyboard;
pub mod devices;
pub mod flow;
pub mod hid_pos;
pub mod outbox;
pub mod scan;
pub mod sounds;
pub mod station;
pub mod sync;
pub mod wedge;
pub mod workers;

/// This app's version, reported to the server with every request.
pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");
