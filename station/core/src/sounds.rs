//! Scan-outcome sounds: generated tones played off the scan loop's thread.
//!
//! Workers rely on these tones more than on the screen, so each outcome has a
//! shape that differs in more than pitch:
//!
//! | tone           | shape                                             | length  |
//! |----------------|---------------------------------------------------|---------|
//! | `Ok`           | one short high beep, 1800 Hz sine                 | 120 ms  |
//! | `Error`        | one long low buzz, 220 Hz soft-clipped square     | 350 ms  |
//! | `Complete`     | three rising notes C6, E6, G6                     | 510 ms  |
//! | `SavedOffline` | two short mid beeps (1000 Hz) with a gap          | 250 ms  |
//!
//! Every note has a 5 ms raised-cosine fade in and out (no clicks) and peaks
//! at no more than 0.5.
//!
//! rodio's `OutputStream` is not `Send`, so one thread owns it for the life of
//! the station. [`Sounds::play`] stores the tone in a one-tone slot and wakes
//! the thread with a `try_send` on a channel of capacity 1: no lock, no
//! allocation, no wait. A new tone stops the one still playing. If the device
//! cannot be opened, or fails later, that `Sounds` turns silent and every
//! later `play` is a no-op; the first such failure in the process is logged
//! with `tracing::warn!`, later ones only at debug level.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The sample rate tones are generated at for playback; rodio converts to the
/// device's rate.
pub const PLAYBACK_RATE: u32 = 48_000;

/// The loudest sample any tone contains.
pub const MAX_AMPLITUDE: f32 = 0.5;

/// Length of the fade in and fade out of every note.
const FADE_MS: f64 = 5.0;

/// How long [`Sounds::new`] waits for the audio thread to report whether the
/// device opened. Without a device ALSA answers within milliseconds; this
/// only bounds a device that hangs on open. After it, sounds stay enabled and
/// the thread turns them off by itself if the open fails later.
const OPEN_WAIT: Duration = Duration::from_secs(2);

/// The outcome a sound reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Scan accepted: short and high.
    Ok,
    /// Scan rejected: long, low buzz.
    Error,
    /// Parent bag complete: three rising notes.
    Complete,
    /// Scan kept in the local outbox while the server is unreachable: two short beeps.
    SavedOffline,
}

impl Tone {
    /// Every tone, in a fixed order.
    pub const ALL: [Tone; 4] = [Tone::Ok, Tone::Error, Tone::Complete, Tone::SavedOffline];

    fn index(self) -> usize {
        match self {
            Tone::Ok => 0,
            Tone::Error => 1,
            Tone::Complete => 2,
            Tone::SavedOffline => 3,
        }
    }

    /// Non-zero code for the shared atomic slots (0 means "none").
    fn code(self) -> u8 {
        match self {
            Tone::Ok => 1,
            Tone::Error => 2,
            Tone::Complete => 3,
            Tone::SavedOffline => 4,
        }
    }

    fn from_code(code: u8) -> Option<Tone> {
        Tone::ALL.into_iter().find(|t| t.code() == code)
    }

    fn parts(self) -> &'static [Part] {
        const C6: f64 = 1046.50;
        const E6: f64 = 1318.51;
        const G6: f64 = 1567.98;
        match self {
            Tone::Ok => &[Part::Note {
                hz: 1800.0,
                ms: 120.0,
                wave: Wave::Sine,
                amp: 0.40,
            }],
            Tone::Error => &[Part::Note {
                hz: 220.0,
                ms: 350.0,
                wave: Wave::Buzz,
                amp: 0.45,
            }],
            Tone::Complete => &[
                Part::Note {
                    hz: C6,
                    ms: 130.0,
                    wave: Wave::Sine,
                    amp: 0.40,
                },
                Part::Rest { ms: 15.0 },
                Part::Note {
                    hz: E6,
                    ms: 130.0,
                    wave: Wave::Sine,
                    amp: 0.40,
                },
                Part::Rest { ms: 15.0 },
                Part::Note {
                    hz: G6,
                    ms: 220.0,
                    wave: Wave::Sine,
                    amp: 0.40,
                },
            ],
            Tone::SavedOffline => &[
                Part::Note {
                    hz: 1000.0,
                    ms: 90.0,
                    wave: Wave::Sine,
                    amp: 0.40,
                },
                Part::Rest { ms: 70.0 },
                Part::Note {
                    hz: 1000.0,
                    ms: 90.0,
                    wave: Wave::Sine,
                    amp: 0.40,
                },
            ],
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Wave {
    Sine,
    /// A sine pushed through `tanh`: square-ish, rich in odd harmonics, but
    /// with the zero crossings of the sine.
    Buzz,
}

#[derive(Debug, Clone, Copy)]
enum Part {
    Note {
        hz: f64,
        ms: f64,
        wave: Wave,
        amp: f32,
    },
    Rest {
        ms: f64,
    },
}

fn sample_count(ms: f64, sample_rate: u32) -> usize {
    // Lengths are small positive numbers: the cast cannot truncate meaningfully.
    (ms * f64::from(sample_rate) / 1000.0).round() as usize
}

/// The waveform of `tone`, mono, at `sample_rate`. Starts and ends at 0,
/// never exceeds [`MAX_AMPLITUDE`]. Empty for a sample rate of 0.
pub fn samples(tone: Tone, sample_rate: u32) -> Vec<f32> {
    let mut out = Vec::new();
    if sample_rate == 0 {
        return out;
    }
    let rate = f64::from(sample_rate);
    for part in tone.parts() {
        match *part {
            Part::Rest { ms } => {
                out.resize(out.len() + sample_count(ms, sample_rate), 0.0);
            }
            Part::Note { hz, ms, wave, amp } => {
                let n = sample_count(ms, sample_rate);
                let fade = sample_count(FADE_MS, sample_rate).min(n / 2).max(1);
                let drive = 3.0_f64;
                out.extend((0..n).map(|i| {
                    let phase = std::f64::consts::TAU * hz * i as f64 / rate;
                    let raw = match wave {
                        Wave::Sine => phase.sin(),
                        Wave::Buzz => (drive * phase.sin()).tanh() / drive.tanh(),
                    };
                    let edge = i.min(n - 1 - i);
                    let env = if edge >= fade {
                        1.0
                    } else {
                        0.5 - 0.5 * (std::f64::consts::PI * edge as f64 / fade as f64).cos()
                    };
                    let v = (raw * env) as f32 * amp;
                    v.clamp(-MAX_AMPLITUDE, MAX_AMPLITUDE)
                }));
            }
        }
    }
    out
}

/// Whether this process already warned about sounds being off: a station
/// without speakers logs it once, not once per `Sounds` or per scan.
static WARNED: AtomicBool = AtomicBool::new(false);

/// State shared between the [`Sounds`] handles and the audio thread.
#[derive(Debug, Default)]
struct Shared {
    silent: AtomicBool,
    /// The newest tone not yet started: 0 for none, else `Tone::index() + 1`.
    /// A slot, not a queue: the newest tone always wins and older ones that
    /// never started are dropped (they would be cut short at once anyway).
    pending: AtomicU8,
    /// Tones handed to the device, and the last of them (same coding as
    /// `pending`): lets tests see the audio path at work.
    started: AtomicU64,
    last_started: AtomicU8,
}

impl Shared {
    /// Turns sound off for good; only the first reason in the process is a
    /// warning.
    fn give_up(&self, what: &str, error: &dyn fmt::Display) {
        if self.silent.swap(true, Ordering::SeqCst) {
            return;
        }
        if WARNED.swap(true, Ordering::SeqCst) {
            tracing::debug!(%error, "{what}; station sounds are off");
        } else {
            tracing::warn!(%error, "{what}; station sounds are off");
        }
    }
}

/// Plays [`Tone`]s without ever blocking the caller. Cheap to clone; all
/// clones share one audio thread.
#[derive(Clone)]
pub struct Sounds {
    /// Wakes the audio thread; capacity 1, so a full channel means a wake-up
    /// is already on its way. `None` for a silent `Sounds`.
    wake: Option<SyncSender<()>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Sounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sounds")
            .field("silent", &self.is_silent())
            .finish()
    }
}

impl Default for Sounds {
    /// Same as [`Sounds::silent`]: opening a device is never implicit.
    fn default() -> Self {
        Sounds::silent()
    }
}

impl Sounds {
    /// Opens the default audio output on a dedicated thread. With no usable
    /// device the result is silent (one `tracing::warn!` per process); never
    /// panics. Waits for the open to succeed or fail, at most 2 s.
    pub fn new() -> Sounds {
        let shared = Arc::new(Shared::default());
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let (ready_tx, ready_rx) = mpsc::sync_channel::<()>(1);
        let thread_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name("tt-sounds".into())
            .spawn(move || audio_thread(&woken, &ready_tx, &thread_shared));
        if let Err(e) = spawned {
            shared.give_up("cannot start the audio thread", &e);
            return Sounds { wake: None, shared };
        }
        if ready_rx.recv_timeout(OPEN_WAIT).is_err() {
            tracing::debug!("audio device still opening; sounds stay on until it fails");
        }
        Sounds {
            wake: Some(wake),
            shared,
        }
    }

    /// Never plays anything: for tests and headless use.
    pub fn silent() -> Sounds {
        let shared = Shared::default();
        shared.silent.store(true, Ordering::SeqCst);
        Sounds {
            wake: None,
            shared: Arc::new(shared),
        }
    }

    /// Starts `tone` and returns at once, cutting short the tone still
    /// playing. A no-op when silent. Two atomic operations, no lock, no
    /// allocation.
    pub fn play(&self, tone: Tone) {
        let Some(wake) = &self.wake else { return };
        if self.shared.silent.load(Ordering::Relaxed) {
            return;
        }
        self.shared.pending.store(tone.code(), Ordering::SeqCst);
        // Full: the thread has a wake-up it has not taken yet, and it reads
        // `pending` only after taking it, so it will see this tone.
        if let Err(TrySendError::Disconnected(())) = wake.try_send(()) {
            self.shared
                .give_up("the audio thread stopped", &"channel closed");
        }
    }

    /// True when nothing will be heard: built with [`Sounds::silent`], or the
    /// device could not be opened or failed.
    pub fn is_silent(&self) -> bool {
        self.wake.is_none() || self.shared.silent.load(Ordering::SeqCst)
    }
}

/// Owns the output stream (not `Send`) for as long as any [`Sounds`] handle
/// lives. Returns on the first device failure, which closes the channel.
fn audio_thread(woken: &Receiver<()>, ready: &SyncSender<()>, shared: &Shared) {
    let opened = rodio::OutputStream::try_default();
    if let Err(e) = &opened {
        // Before signalling: new() then returns an already silent Sounds.
        shared.give_up("no audio output device", e);
    }
    // new() may have stopped waiting: a failed send is fine.
    let _ = ready.try_send(());
    let Ok((_stream, handle)) = opened else {
        return;
    };
    let tones: Vec<Vec<f32>> = Tone::ALL
        .iter()
        .map(|&t| samples(t, PLAYBACK_RATE))
        .collect();
    let mut current: Option<rodio::Sink> = None;
    while woken.recv().is_ok() {
        let Some(tone) = Tone::from_code(shared.pending.swap(0, Ordering::SeqCst)) else {
            continue;
        };
        if let Some(previous) = current.take() {
            previous.stop();
        }
        let sink = match rodio::Sink::try_new(&handle) {
            Ok(sink) => sink,
            Err(e) => {
                shared.give_up("the audio device failed", &e);
                return;
            }
        };
        let data = tones.get(tone.index()).cloned().unwrap_or_default();
        sink.append(rodio::buffer::SamplesBuffer::new(1, PLAYBACK_RATE, data));
        current = Some(sink);
        shared.started.fetch_add(1, Ordering::SeqCst);
        shared.last_started.store(tone.code(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    const RATES: [u32; 3] = [22_050, 44_100, PLAYBACK_RATE];

    fn secs(len: usize, rate: u32) -> f64 {
        len as f64 / f64::from(rate)
    }

    /// Runs of sound: (start, end) sample indices, found on 1 ms windows
    /// whose peak exceeds `threshold`.
    fn segments(s: &[f32], rate: u32, threshold: f32) -> Vec<(usize, usize)> {
        let win = (rate / 1000).max(1) as usize;
        let mut out: Vec<(usize, usize)> = Vec::new();
        let mut open: Option<usize> = None;
        for (w, chunk) in s.chunks(win).enumerate() {
            let loud = chunk.iter().any(|x| x.abs() > threshold);
            match (loud, open) {
                (true, None) => open = Some(w * win),
                (false, Some(start)) => {
                    out.push((start, w * win));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            out.push((start, s.len()));
        }
        out
    }

    /// Pitch by zero crossings: two per period.
    fn pitch(s: &[f32], rate: u32) -> f64 {
        let mut crossings = 0usize;
        let mut last_sign = 0i8;
        for &x in s {
            let sign = if x > 0.0 {
                1
            } else if x < 0.0 {
                -1
            } else {
                0
            };
            if sign != 0 {
                if last_sign != 0 && sign != last_sign {
                    crossings += 1;
                }
                last_sign = sign;
            }
        }
        crossings as f64 / 2.0 / secs(s.len(), rate)
    }

    fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= expected * tolerance
    }

    #[test]
    fn durations_per_tone() {
        for rate in RATES {
            for tone in Tone::ALL {
                let s = samples(tone, rate);
                let d = secs(s.len(), rate);
                assert!(d > 0.05, "{tone:?} at {rate} Hz is {d} s");
                if tone == Tone::Complete {
                    assert!(d < 0.8, "complete is {d} s");
                } else {
                    assert!(d < 0.4, "{tone:?} at {rate} Hz is {d} s, must be < 0.4");
                }
            }
        }
        assert!(samples(Tone::Ok, 0).is_empty());
    }

    #[test]
    fn ok_is_short_and_high() {
        let s = samples(Tone::Ok, PLAYBACK_RATE);
        assert!(secs(s.len(), PLAYBACK_RATE) <= 0.15);
        let segs = segments(&s, PLAYBACK_RATE, 0.01);
        assert_eq!(segs.len(), 1, "{segs:?}");
        let p = pitch(&s, PLAYBACK_RATE);
        assert!(within(p, 1800.0, 0.03), "ok pitch {p}");
    }

    #[test]
    fn error_is_lower_and_longer_than_ok() {
        let ok = samples(Tone::Ok, PLAYBACK_RATE);
        let err = samples(Tone::Error, PLAYBACK_RATE);
        assert!(err.len() as f64 >= 2.0 * ok.len() as f64);
        assert!(secs(err.len(), PLAYBACK_RATE) >= 0.3);
        let (p_ok, p_err) = (pitch(&ok, PLAYBACK_RATE), pitch(&err, PLAYBACK_RATE));
        assert!(within(p_err, 220.0, 0.03), "error pitch {p_err}");
        assert!(p_err * 4.0 < p_ok, "error {p_err} Hz vs ok {p_ok} Hz");
        // Square-ish: most of the note sits near full amplitude, unlike a sine.
        let loud = err.iter().filter(|x| x.abs() > 0.35).count();
        assert!(
            loud as f64 > 0.6 * err.len() as f64,
            "{loud} of {}",
            err.len()
        );
        assert_eq!(segments(&err, PLAYBACK_RATE, 0.01).len(), 1);
    }

    #[test]
    fn complete_is_three_rising_notes() {
        for rate in RATES {
            let s = samples(Tone::Complete, rate);
            let segs = segments(&s, rate, 0.01);
            assert!(segs.len() >= 3, "{segs:?}");
            let pitches: Vec<f64> = segs.iter().map(|&(a, b)| pitch(&s[a..b], rate)).collect();
            assert!(
                pitches.windows(2).all(|w| w[1] > w[0] * 1.05),
                "not rising: {pitches:?}"
            );
            for (p, want) in pitches.iter().zip([1046.5, 1318.5, 1568.0]) {
                assert!(within(*p, want, 0.04), "{p} vs {want} at {rate} Hz");
            }
        }
    }

    #[test]
    fn saved_offline_is_two_bursts_with_a_quiet_gap() {
        for rate in RATES {
            let s = samples(Tone::SavedOffline, rate);
            let segs = segments(&s, rate, 0.01);
            assert_eq!(segs.len(), 2, "{segs:?}");
            let gap = &s[segs[0].1..segs[1].0];
            assert!(
                secs(gap.len(), rate) >= 0.03,
                "gap {} s",
                secs(gap.len(), rate)
            );
            // Near-silence: the fade tails, then true silence.
            assert!(gap.iter().all(|x| x.abs() <= 0.01));
            let zeros = gap.iter().filter(|x| x.abs() < 1e-6).count();
            assert!(secs(zeros, rate) >= 0.03, "{zeros} silent samples");
            let (p1, p2) = (
                pitch(&s[segs[0].0..segs[0].1], rate),
                pitch(&s[segs[1].0..segs[1].1], rate),
            );
            assert!(
                within(p1, 1000.0, 0.04) && within(p2, 1000.0, 0.04),
                "{p1} {p2}"
            );
            // Mid: between error and ok.
            assert!(p1 > 2.0 * 220.0 && p1 < 1800.0 * 0.8);
        }
    }

    #[test]
    fn amplitude_is_bounded_and_loud_enough() {
        for rate in RATES {
            for tone in Tone::ALL {
                let s = samples(tone, rate);
                let peak = s.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                assert!(s.iter().all(|x| x.is_finite()));
                assert!(peak <= MAX_AMPLITUDE, "{tone:?} peaks at {peak}");
                assert!(peak >= 0.3, "{tone:?} too quiet: {peak}");
            }
        }
    }

    #[test]
    fn fades_leave_no_clicks() {
        let rate = PLAYBACK_RATE;
        for tone in Tone::ALL {
            let s = samples(tone, rate);
            let (first, last) = (s[0], s[s.len() - 1]);
            assert!(
                first.abs() < 1e-3 && last.abs() < 1e-3,
                "{tone:?}: {first} {last}"
            );
            // The first and last 0.5 ms stay quiet: the fade, not a jump.
            let edge = (rate / 2000) as usize;
            assert!(s[..edge].iter().all(|x| x.abs() < 0.05), "{tone:?} fade-in");
            assert!(
                s[s.len() - edge..].iter().all(|x| x.abs() < 0.05),
                "{tone:?} fade-out"
            );
            // No sample-to-sample jump beyond what the waveform itself does
            // (1800 Hz at 0.4 moves at most ~0.094 a sample at 48 kHz); a
            // click between notes would jump by the full amplitude.
            let step = s.windows(2).fold(0.0f32, |m, w| m.max((w[1] - w[0]).abs()));
            assert!(step < 0.12, "{tone:?} jumps by {step}");
        }
    }

    #[test]
    fn silent_play_returns_immediately() {
        let sounds = Sounds::silent();
        assert!(sounds.is_silent());
        assert!(Sounds::default().is_silent());
        let shared = Arc::new(sounds.clone());
        let start = Instant::now();
        for _ in 0..250 {
            for tone in Tone::ALL {
                shared.play(tone);
            }
        }
        assert!(
            start.elapsed() < Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
        assert!(format!("{sounds:?}").contains("silent: true"));
    }

    #[test]
    fn tone_codes_round_trip() {
        for (i, tone) in Tone::ALL.into_iter().enumerate() {
            assert_eq!(tone.index(), i);
            assert_ne!(tone.code(), 0);
            assert_eq!(Tone::from_code(tone.code()), Some(tone));
        }
        assert_eq!(Tone::from_code(0), None);
    }

    #[test]
    fn sounds_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Sounds>();
        check::<Arc<Sounds>>();
    }

    // ---- Real rodio/ALSA runs, each in a child process of this test binary:
    // ALSA_CONFIG_PATH is process-wide and read once by ALSA.

    const CHILD_ENV: &str = "TT_SOUND_CHILD";

    /// Counts `warn` events from every thread (the audio thread logs).
    struct WarnCounter(Arc<AtomicUsize>);

    struct Message(String);
    impl tracing::field::Visit for Message {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    impl tracing::Subscriber for WarnCounter {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut msg = Message(String::new());
            event.record(&mut msg);
            eprintln!("[{}]{}", event.metadata().level(), msg.0);
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn count_warnings() -> Arc<AtomicUsize> {
        let count = Arc::new(AtomicUsize::new(0));
        tracing::subscriber::set_global_default(WarnCounter(Arc::clone(&count)))
            .expect("child process sets the subscriber once");
        count
    }

    fn is_child(test: &str) -> bool {
        std::env::var(CHILD_ENV).as_deref() == Ok(test)
    }

    /// Every `play` must return at once, whatever the device does.
    fn play_all_quickly(sounds: &Sounds, rounds: usize) {
        for _ in 0..rounds {
            for tone in Tone::ALL {
                let start = Instant::now();
                sounds.play(tone);
                let took = start.elapsed();
                assert!(
                    took < Duration::from_millis(20),
                    "play({tone:?}) took {took:?}"
                );
            }
        }
    }

    fn wait_for_last_started(sounds: &Sounds, tone: Tone) {
        let start = Instant::now();
        while sounds.shared.last_started.load(Ordering::SeqCst) != tone.code() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{tone:?} never reached the device"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Re-runs test `test` of this binary in a child process with ALSA
    /// reading `alsa_conf` only; fails if it fails, hangs or did not run.
    fn run_in_child(test: &str, alsa_conf: &str) {
        let dir = std::env::temp_dir().join(format!("tt-sounds-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let conf = dir.join("asound.conf");
        std::fs::write(&conf, alsa_conf).expect("write ALSA config");
        let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
        let module = module_path!();
        let module = module.split_once("::").map_or(module, |(_, rest)| rest);
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                &format!("{module}::{test}"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ALSA_CONFIG_PATH", &conf)
            .env(CHILD_ENV, test)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("stdout file"))
            .stderr(std::fs::File::create(&err_path).expect("stderr file"))
            .spawn()
            .expect("spawn child test");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait child") {
                break Some(status);
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let (stdout, stderr) = (read(&out_path), read(&err_path));
        let _ = std::fs::remove_dir_all(&dir);
        let report = format!("--- stdout\n{stdout}\n--- stderr\n{stderr}");
        let status = status.unwrap_or_else(|| panic!("child {test} hung\n{report}"));
        assert!(status.success(), "child {test}: {status}\n{report}");
        assert!(
            stdout.contains("1 passed"),
            "child {test} did not run\n{report}"
        );
        assert!(stdout.contains(&format!("CHILD-DONE {test}")), "{report}");
        eprintln!("{report}");
    }

    #[test]
    fn null_device_plays_every_tone_without_blocking() {
        const TEST: &str = "null_device_plays_every_tone_without_blocking";
        if !is_child(TEST) {
            run_in_child(
                TEST,
                "</usr/share/alsa/alsa.conf>\npcm.!default { type null }\n",
            );
            return;
        }
        let warnings = count_warnings();
        let sounds = Sounds::new();
        assert!(!sounds.is_silent(), "the null device should open");
        let clone = sounds.clone();
        play_all_quickly(&sounds, 25);
        // The null device is not paced: no duration is asserted, only that
        // the thread hands tones to the device and the newest one wins.
        wait_for_last_started(&sounds, Tone::SavedOffline);
        play_all_quickly(&clone, 5);
        clone.play(Tone::Error);
        wait_for_last_started(&sounds, Tone::Error);
        let started = sounds.shared.started.load(Ordering::SeqCst);
        assert!((2..=121).contains(&started), "{started} tones started");
        assert!(!sounds.is_silent());
        assert_eq!(warnings.load(Ordering::SeqCst), 0);
        drop(sounds);
        drop(clone);
        println!("CHILD-DONE {TEST}");
    }

    #[test]
    fn missing_card_is_silent_and_warns_once() {
        const TEST: &str = "missing_card_is_silent_and_warns_once";
        if !is_child(TEST) {
            // No include of alsa.conf: only the missing card is known, so
            // rodio's fallback to other devices finds nothing either.
            run_in_child(TEST, "pcm.!default { type hw card 99 }\n");
            return;
        }
        let warnings = count_warnings();
        let start = Instant::now();
        let sounds = Sounds::new();
        let opened_in = start.elapsed();
        assert!(opened_in < OPEN_WAIT, "new() took {opened_in:?}");
        assert!(sounds.is_silent());
        play_all_quickly(&sounds, 25);
        let other = Sounds::new();
        assert!(other.is_silent());
        play_all_quickly(&other, 5);
        thread::sleep(Duration::from_millis(100));
        // One warning for the whole process: none per play(), none for the
        // second Sounds.
        assert_eq!(warnings.load(Ordering::SeqCst), 1);
        println!("CHILD-DONE {TEST}");
    }

    #[test]
    fn missing_card_with_full_alsa_config_never_blocks() {
        const TEST: &str = "missing_card_with_full_alsa_config_never_blocks";
        if !is_child(TEST) {
            run_in_child(
                TEST,
                "</usr/share/alsa/alsa.conf>\npcm.!default { type hw card 99 }\n",
            );
            return;
        }
        let warnings = count_warnings();
        let sounds = Sounds::new();
        play_all_quickly(&sounds, 25);
        thread::sleep(Duration::from_millis(200));
        play_all_quickly(&sounds, 5);
        // rodio may fall back to another ALSA device (there may be none):
        // either silent with one warning, or playing with none.
        let expected = usize::from(sounds.is_silent());
        assert_eq!(warnings.load(Ordering::SeqCst), expected);
        println!("CHILD-DONE {TEST} silent={}", sounds.is_silent());
    }
}
