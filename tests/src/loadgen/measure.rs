//! What a scenario is measured by: request latencies and their percentiles,
//! and the CPU time and peak memory of the processes involved, read from
//! `/proc` (CPU: `utime + stime` of `/proc/PID/stat` over the clock tick of
//! `getconf CLK_TCK`; memory: `VmHWM` of `/proc/PID/status`, reset before a
//! scenario through `/proc/PID/clear_refs` where the kernel allows it).

use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The scenario's clock: load runs from `start`, counts from `measure_from`
/// (after the warm-up), and no request starts after `end`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
}

impl Window {
    /// A window starting now.
    pub fn new(warmup: Duration, measured: Duration) -> Window {
        let start = Instant::now();
        Window {
            start,
            measure_from: start + warmup,
            end: start + warmup + measured,
        }
    }

    /// True for a request that started after the warm-up and ended in time.
    pub fn counts(&self, started: Instant, done: Instant) -> bool {
        started >= self.measure_from && done <= self.end
    }

    pub fn measured(&self) -> Duration {
        self.end - self.measure_from
    }
}

/// What the clients of one scenario saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests answered inside the measured window.
    pub requests: u64,
    /// Events applied inside the measured window.
    pub applied: u64,
    /// Answers that should not have come, warm-up included: any 5xx, any
    /// refusal, any transport error, any event not applied.
    pub unexpected: u64,
    pub first_unexpected: Option<String>,
    /// Latency of each measured request, in microseconds.
    pub latencies_us: Vec<u32>,
}

impl Tally {
    /// Notes one request; answers whether it falls in the measured window.
    pub fn record(&mut self, window: &Window, started: Instant, done: Instant) -> bool {
        if !window.counts(started, done) {
            return false;
        }
        self.requests += 1;
        let us = (done - started).as_micros().min(u128::from(u32::MAX)) as u32;
        self.latencies_us.push(us);
        true
    }

    pub fn unexpected(&mut self, what: impl Into<String>) {
        self.unexpected += 1;
        if self.first_unexpected.is_none() {
            self.first_unexpected = Some(what.into());
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.applied += other.applied;
        self.unexpected += other.unexpected;
        if self.first_unexpected.is_none() {
            self.first_unexpected = other.first_unexpected;
        }
        self.latencies_us.extend(other.latencies_us);
    }

    /// p50, p95, p99 and max, in milliseconds (nearest rank).
    pub fn percentiles(&self) -> Percentiles {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let at = |p: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            f64::from(sorted[rank - 1]) / 1000.0
        };
        Percentiles {
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The clock tick `/proc/PID/stat` counts CPU time in.
pub fn clock_tick() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The fields of `/proc/PID/stat` after the command name, which may hold spaces.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Fields of `/proc/PID/stat` summed; after the name, state is field 3, so
/// utime (14), stime (15), cutime (16) and cstime (17) are at 11 to 14.
fn ticks(pid: u32, fields: std::ops::Range<usize>) -> Option<u64> {
    let f = stat_fields(pid)?;
    fields.map(|i| f.get(i)?.parse::<u64>().ok()).sum()
}

/// CPU ticks (user + system) a process has used so far.
fn cpu_ticks(pid: u32) -> Option<u64> {
    ticks(pid, 11..13)
}

/// CPU ticks a process and its ended, reaped children have used so far.
fn cpu_ticks_with_reaped(pid: u32) -> Option<u64> {
    ticks(pid, 11..15)
}

/// The processes whose parent is `ppid`.
fn children_of(ppid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat_fields(*pid)
                .and_then(|f| f.get(1)?.parse::<u32>().ok())
                .is_some_and(|parent| parent == ppid)
        })
        .collect()
}

/// The peak resident memory of a process, in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Watches the server process, the database's processes (PostgreSQL: the
/// postmaster and its children) and this tool itself.
#[derive(Debug, Clone)]
pub struct Probe {
    pub server: u32,
    pub postmaster: Option<u32>,
    tick: f64,
}

/// The machine's busy and stolen CPU ticks so far, from the `cpu` line of
/// `/proc/stat` (busy: user, nice, system, irq, softirq; stolen: steal).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some((at(0) + at(1) + at(2) + at(5) + at(6), at(7)))
}

/// CPU seconds used so far by each side.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    server: f64,
    database: Option<f64>,
    tool: f64,
    machine: Option<(f64, f64)>,
}

/// What one scenario cost the machine.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    /// CPU seconds of the server process while the scenario was measured.
    pub server_cpu_s: f64,
    /// CPU seconds of the PostgreSQL processes (none for SQLite, which runs inside the server).
    pub db_cpu_s: Option<f64>,
    /// CPU seconds of this load generator.
    pub tool_cpu_s: f64,
    /// CPU seconds of every other process on the machine (other work
    /// running beside the benchmark makes its figures worse).
    pub other_cpu_s: Option<f64>,
    /// CPU seconds the hypervisor gave to others while this machine wanted them.
    pub stolen_cpu_s: Option<f64>,
    /// The server's peak resident memory during the scenario, in MB.
    pub server_peak_rss_mb: Option<f64>,
}

impl Probe {
    pub fn new(server: u32, postmaster: Option<u32>) -> Probe {
        Probe {
            server,
            postmaster,
            tick: clock_tick(),
        }
    }

    pub fn sample(&self) -> CpuSample {
        let secs = |ticks: u64| ticks as f64 / self.tick;
        // A backend that ends is reaped by the postmaster, which then counts
        // its CPU time as its children's: the sum never goes back.
        let database = self.postmaster.and_then(|pm| {
            let live: u64 = children_of(pm).into_iter().filter_map(cpu_ticks).sum();
            Some(secs(cpu_ticks_with_reaped(pm)? + live))
        });
        CpuSample {
            server: cpu_ticks(self.server).map_or(0.0, secs),
            database,
            tool: cpu_ticks(std::process::id()).map_or(0.0, secs),
            machine: machine_ticks().map(|(busy, stolen)| (secs(busy), secs(stolen))),
        }
    }

    /// The server's peak resident memory so far (since its start or the
    /// last [`Probe::reset_peak`]), in MB.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        peak_rss_mb(self.server)
    }

    /// Starts a new peak-memory reading for the server; false when the kernel
    /// does not allow it (the peak is then the one since the server started).
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.server), "5").is_ok()
    }

    /// What the machine spent between two samples, and the server's peak memory.
    pub fn usage(&self, from: CpuSample, to: CpuSample) -> Usage {
        let server_cpu_s = to.server - from.server;
        let db_cpu_s = match (from.database, to.database) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let tool_cpu_s = to.tool - from.tool;
        let machine = match (from.machine, to.machine) {
            (Some(a), Some(b)) => Some((b.0 - a.0, b.1 - a.1)),
            _ => None,
        };
        Usage {
            server_cpu_s,
            db_cpu_s,
            tool_cpu_s,
            other_cpu_s: machine.map(|(busy, _)| {
                (busy - server_cpu_s - db_cpu_s.unwrap_or(0.0) - tool_cpu_s).max(0.0)
            }),
            stolen_cpu_s: machine.map(|(_, stolen)| stolen),
            server_peak_rss_mb: peak_rss_mb(self.server),
        }
    }

    /// Samples CPU while `work` runs: from the window's warm-up end to its end.
    pub async fn during<F: std::future::Future>(
        &self,
        window: &Window,
        work: F,
    ) -> (F::Output, Usage) {
        let sampler = async {
            tokio::time::sleep_until(window.measure_from.into()).await;
            self.reset_peak();
            let from = self.sample();
            tokio::time::sleep_until(window.end.into()).await;
            (from, self.sample())
        };
        let (out, (from, to)) = tokio::join!(work, sampler);
        (out, self.usage(from, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let tally = Tally {
            latencies_us: (1..=100).map(|ms| ms * 1000).collect(),
            ..Tally::default()
        };
        let p = tally.percentiles();
        assert_eq!(
            (p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(peak_rss_mb(me).is_some_and(|mb| mb > 0.0));
    }
}
