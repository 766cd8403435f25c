//! Request metrics of this process, kept in memory for the health page:
//! requests by status, latency percentiles and refusals by error code over
//! the last 15 minutes.
//!
//! Each request lands in the 10-second slot of a fixed ring of 90 slots; a
//! slot holds counts by status, counts by refusal code and a log-scale
//! latency histogram (8 steps per doubling: a percentile is read at most
//! 12.5% above the true value, never below). A slot older than the window is
//! cleared when the ring comes round to it again, so memory stays fixed
//! whatever the traffic. Recording takes one slot's mutex for a few counter
//! increments; readers take the slots one at a time.
//!
//! Time is the process's monotonic clock, counted from the start; the
//! `*_at` functions take it as a parameter so tests can move it.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

/// The length of one slot.
pub const SLOT: Duration = Duration::from_secs(10);
/// The slots kept: 15 minutes.
pub const SLOTS: usize = 90;
/// The windows the health page reports, in minutes.
pub const WINDOWS: [u64; 3] = [1, 5, 15];

/// Histogram steps per doubling (a power of two).
const STEPS: u64 = 8;
const STEP_BITS: u32 = STEPS.trailing_zeros();
/// Latencies are counted up to 2^27 µs (about 134 s); longer ones count as that.
const MAX_MICROS: u64 = (1 << 27) - 1;
const BINS: usize = bin_of(MAX_MICROS) + 1;
/// Distinct statuses and codes one slot tells apart; more land in "other".
const MAX_STATUSES: usize = 16;
const MAX_CODES: usize = 32;

/// The error codes a response refused with, for the metrics: the API's error
/// answers carry their code, a batch of station events the codes of its
/// refused scans. Taken off the response by [`track`].
#[derive(Debug, Clone, Default)]
pub struct RefusalCodes(pub Vec<Cow<'static, str>>);

impl RefusalCodes {
    pub fn one(code: &'static str) -> RefusalCodes {
        RefusalCodes(vec![Cow::Borrowed(code)])
    }
}

/// The histogram bin of a latency in microseconds.
const fn bin_of(micros: u64) -> usize {
    let v = if micros > MAX_MICROS {
        MAX_MICROS
    } else {
        micros
    };
    let msb = 63 - (v | 1).leading_zeros();
    let shift = msb.saturating_sub(STEP_BITS);
    (shift as u64 * STEPS + (v >> shift)) as usize
}

/// The first latency (µs) past a bin: every latency in the bin is below it.
fn bin_end(bin: usize) -> u64 {
    let bin = bin as u64;
    if bin < 2 * STEPS {
        return bin + 1;
    }
    let shift = bin / STEPS - 1;
    let mantissa = bin % STEPS + STEPS;
    (mantissa + 1) << shift
}

#[derive(Debug)]
struct Slot {
    /// Which 10-second period (since the start) the counts belong to.
    period: u64,
    requests: u64,
    statuses: Vec<(u16, u64)>,
    /// Requests of statuses beyond the distinct ones kept.
    other_statuses: u64,
    codes: Vec<(Cow<'static, str>, u64)>,
    other_codes: u64,
    latency: [u32; BINS],
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            period: u64::MAX,
            requests: 0,
            statuses: Vec::new(),
            other_statuses: 0,
            codes: Vec::new(),
            other_codes: 0,
            latency: [0; BINS],
        }
    }

    /// Makes the slot hold `period`, clearing what an older period left.
    fn claim(&mut self, period: u64) {
        if self.period != period {
            self.period = period;
            self.requests = 0;
            self.statuses.clear();
            self.other_statuses = 0;
            self.codes.clear();
            self.other_codes = 0;
            self.latency = [0; BINS];
        }
    }
}

/// The request metrics of this process.
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    total: AtomicU64,
    slots: Box<[Mutex<Slot>]>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A panic while holding the lock left counts at worst half-updated.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            started: Instant::now(),
            total: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| Mutex::new(Slot::empty())).collect(),
        }
    }

    /// Time since this process started counting.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Counts one answered request now.
    pub fn record(&self, status: u16, latency: Duration, codes: &[Cow<'static, str>]) {
        self.record_at(self.uptime(), status, latency, codes);
    }

    /// Counts one request answered `at` after the start.
    pub fn record_at(
        &self,
        at: Duration,
        status: u16,
        latency: Duration,
        codes: &[Cow<'static, str>],
    ) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let period = at.as_secs() / SLOT.as_secs();
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut slot = lock(&self.slots[(period % SLOTS as u64) as usize]);
        slot.claim(period);
        slot.requests += 1;
        slot.latency[bin_of(micros)] += 1;
        if !bump(&mut slot.statuses, &status, MAX_STATUSES) {
            slot.other_statuses += 1;
        }
        for code in codes {
            if !bump(&mut slot.codes, code, MAX_CODES) {
                slot.other_codes += 1;
            }
        }
    }

    /// The figures of the last 1, 5 and 15 minutes, now.
    pub fn summary(&self) -> Summary {
        self.summary_at(self.uptime())
    }

    /// The figures as they stand `at` after the start.
    pub fn summary_at(&self, at: Duration) -> Summary {
        let now = at.as_secs() / SLOT.as_secs();
        let into_slot = at.as_secs_f64() - (now * SLOT.as_secs()) as f64;
        let longest = WINDOWS.iter().max().copied().unwrap_or(15) * 60 / SLOT.as_secs();
        let mut windows: Vec<Gathered> = WINDOWS
            .iter()
            .map(|m| Gathered::new(m * 60 / SLOT.as_secs()))
            .collect();
        let mut statuses: Vec<(u16, u64)> = Vec::new();
        let mut codes: Vec<(Cow<'static, str>, u64)> = Vec::new();
        let mut other_codes = 0;
        for slot in self.slots.iter() {
            let slot = lock(slot);
            if slot.period > now || now - slot.period >= longest {
                continue;
            }
            let age = now - slot.period;
            for w in windows.iter_mut().filter(|w| age < w.slots) {
                w.requests += slot.requests;
                w.errors += slot
                    .statuses
                    .iter()
                    .filter(|(s, _)| *s >= 400)
                    .map(|(_, n)| n)
                    .sum::<u64>()
                    + slot.other_statuses;
                for (sum, n) in w.latency.iter_mut().zip(slot.latency.iter()) {
                    *sum += u64::from(*n);
                }
            }
            for (status, n) in &slot.statuses {
                add(&mut statuses, *status, *n);
            }
            if slot.other_statuses > 0 {
                add(&mut statuses, 0, slot.other_statuses);
            }
            for (code, n) in &slot.codes {
                add(&mut codes, code.clone(), *n);
            }
            other_codes += slot.other_codes;
        }
        let uptime = at.as_secs_f64();
        let windows = WINDOWS
            .iter()
            .zip(windows)
            .map(|(minutes, w)| {
                // The window's span: its full slots and the current one so
                // far, but never more than the time since the start.
                let span = ((w.slots - 1) * SLOT.as_secs()) as f64 + into_slot;
                let span = span.min(uptime).max(1.0);
                Window {
                    minutes: *minutes,
                    requests: w.requests,
                    per_second: w.requests as f64 / span,
                    errors: w.errors,
                    p50_ms: percentile(&w.latency, w.requests, 0.50),
                    p99_ms: percentile(&w.latency, w.requests, 0.99),
                }
            })
            .collect();
        let mut by_status: Vec<StatusCount> = statuses
            .into_iter()
            .filter(|(s, _)| *s >= 400 || *s == 0)
            .map(|(status, count)| StatusCount {
                status,
                reason: axum::http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("Other"),
                count,
            })
            .collect();
        by_status.sort_by_key(|s| s.status);
        let mut by_code: Vec<CodeCount> = codes
            .into_iter()
            .map(|(code, count)| CodeCount {
                code: code.into_owned(),
                count,
            })
            .collect();
        if other_codes > 0 {
            by_code.push(CodeCount {
                code: "other".into(),
                count: other_codes,
            });
        }
        by_code.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
        Summary {
            total: self.total.load(Ordering::Relaxed),
            windows,
            by_status,
            by_code,
        }
    }
}

/// Counts one more of `key`; false when the list is full without it.
fn bump<K: PartialEq + Clone>(list: &mut Vec<(K, u64)>, key: &K, max: usize) -> bool {
    if let Some(i) = list.iter().position(|(k, _)| k == key) {
        list[i].1 += 1;
    } else if list.len() < max {
        list.push((key.clone(), 1));
    } else {
        return false;
    }
    true
}

fn add<K: PartialEq>(list: &mut Vec<(K, u64)>, key: K, n: u64) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, sum)) => *sum += n,
        None => list.push((key, n)),
    }
}

struct Gathered {
    slots: u64,
    requests: u64,
    errors: u64,
    latency: Vec<u64>,
}

impl Gathered {
    fn new(slots: u64) -> Gathered {
        Gathered {
            slots,
            requests: 0,
            errors: 0,
            latency: vec![0; BINS],
        }
    }
}

/// The latency (ms) that a share `q` of the requests stayed under: the end
/// of the bin holding the request of that rank; none without requests.
fn percentile(bins: &[u64], requests: u64, q: f64) -> Option<f64> {
    if requests == 0 {
        return None;
    }
    let rank = ((requests as f64 * q).ceil() as u64).clamp(1, requests);
    let mut seen = 0;
    for (bin, n) in bins.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(bin_end(bin) as f64 / 1000.0);
        }
    }
    Some(bin_end(BINS - 1) as f64 / 1000.0)
}

/// The request figures the health page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Requests answered since the process started.
    pub total: u64,
    /// The last 1, 5 and 15 minutes.
    pub windows: Vec<Window>,
    /// Answers of status 400 and above in the last 15 minutes (status 0: other).
    pub by_status: Vec<StatusCount>,
    /// Refusals by error code in the last 15 minutes, the most frequent first;
    /// refused scans in a batch of station events count too.
    pub by_code: Vec<CodeCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub minutes: u64,
    pub requests: u64,
    pub per_second: f64,
    /// Answers of status 400 and above.
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusCount {
    /// 0 for statuses beyond the distinct ones kept.
    pub status: u16,
    /// The status's name: `Not Found`.
    pub reason: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeCount {
    pub code: String,
    pub count: u64,
}

/// The middleware that counts every request: status, time to the answer,
/// and the refusal codes the answer carries.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let mut response = next.run(req).await;
    let codes = response
        .extensions_mut()
        .remove::<RefusalCodes>()
        .unwrap_or_default();
    metrics.record(response.status().as_u16(), start.elapsed(), &codes.0);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_every_latency_in_order() {
        let mut last = 0;
        for micros in [0, 1, 7, 15, 16, 17, 31, 32, 100, 1_000, 999_999, MAX_MICROS] {
            let bin = bin_of(micros);
            assert!(bin >= last, "{micros}");
            assert!(bin_end(bin) > micros, "{micros} below the end of its bin");
            assert!(
                bin_end(bin) as f64 <= (micros.max(1) as f64) * 1.125 + 1.0,
                "{micros}: bin end {}",
                bin_end(bin)
            );
            last = bin;
        }
        assert_eq!(bin_of(u64::MAX), BINS - 1);
    }
}
