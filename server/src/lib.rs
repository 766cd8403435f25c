//! TraitorTrack server: bags, links, bills, stations and accounts over one
//! event API, on PostgreSQL or the embedded SQLite.

pub mod api;
pub mod audit;
pub mod bags;
pub mod bills;
pub mod cli;
pub mod config;
pub mod counters;
pub mod db;
pub mod error;
pub mod events;
pub mod linking;
pub mod passwords;
pub mod sessions;
pub mod stations;
pub mod users;

use std::sync::Arc;

pub use api::{app, serve};

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: db::Db,
    pub settings: Arc<config::Settings>,
}
