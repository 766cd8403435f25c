//! Background upkeep of a serving process: the end-of-day summary mail
//! when its time comes, and deleting ended sessions, old rate-limit windows
//! and old hourly scan counters. Any number of processes may run it at once.

use std::time::Duration;

use crate::{counters, ratelimit, sessions, summary_mail, AppState};

/// How often the mail's time is checked.
const EVERY: Duration = Duration::from_secs(60);
/// Rounds between two purges (every ten minutes).
const PURGE_EVERY: u32 = 10;

/// Runs until the task is dropped; a failed round is logged and tried again later.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round = 0u32;
    loop {
        tick.tick().await;
        let now = state.now();
        match summary_mail::send_if_due(&state.db, &state.settings, now).await {
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the end-of-day summary mail failed; it is tried again later")
            }
        }
        round = round.wrapping_add(1);
        if round % PURGE_EVERY != 1 {
            continue;
        }
        match sessions::purge_expired(&state.db, &state.settings, now).await {
            Ok(n) if n > 0 => tracing::info!(sessions = n, "ended sessions deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not delete ended sessions"),
        }
        if let Err(e) = ratelimit::purge(&state.db, now).await {
            tracing::warn!(error = %e, "could not delete old rate-limit windows");
        }
        let today = counters::day_of(now.time(), state.settings.utc_offset);
        if let Err(e) = counters::prune_hourly(&state.db, today).await {
            tracing::warn!(error = %e, "could not delete old hourly scan counters");
        }
    }
}
