//! Scanner devices through hidapi: the device list for settings, and the
//! reader thread that turns a device's reports into scans.
//!
//! The reader opens the chosen device through a [`DeviceOpener`], decodes its
//! reports by kind (usage page 0x8C: HID POS; anything else: boot keyboard),
//! sends each code as a [`Scan`] and reports [`ScannerState`] on a watch
//! channel. When a read fails (the scanner was unplugged) it reports
//! `Disconnected`, drops any half-read code and tries to open the device again
//! every [`ReaderConfig::reopen_every`], so a replugged scanner is back within
//! about half a second. The reader runs on its own thread, never blocks the
//! caller, and survives devices and decoders that misbehave (even panic).
//!
//! Debouncing is not done here: the consumer of the scan channel runs one
//! [`crate::scan::Debouncer`] over all sources.
//!
//! On Linux, hidapi reads `/dev/hidraw*`; the station's user needs read access
//! to the scanner's node (a udev rule), or opening fails and is retried.

use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::boot_keyboard::BootKeyboardDecoder;
use crate::hid_pos::{self, HidPosDecoder};
use crate::scan::{Scan, ScanSender, ScanSource};

/// Generic Desktop page, where keyboards live.
pub const GENERIC_DESKTOP_PAGE: u16 = 0x01;
/// The Keyboard usage on the Generic Desktop page.
pub const KEYBOARD_USAGE: u16 = 0x06;

/// USB vendor ids of bar code scanner makers: Honeywell (Metrologic),
/// Zebra (Symbol), Datalogic, Newland.
const SCANNER_VENDORS: [u16; 4] = [0x0c2e, 0x05e0, 0x05f9, 0x1eab];

/// A HID device the station could read scans from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    pub vendor_id: u16,
    pub product_id: u16,
    /// Manufacturer and product strings, or `vvvv:pppp` when the device has none.
    pub name: String,
    /// 0x8C for a HID POS scanner, 0x01 for a keyboard(-mode scanner).
    pub usage_page: u16,
    /// The OS path hidapi opens it by (`/dev/hidraw3` on Linux).
    pub path: String,
}

impl DeviceInfo {
    /// True for a HID POS scanner (usage page 0x8C).
    pub fn is_hid_pos(&self) -> bool {
        self.usage_page == hid_pos::USAGE_PAGE
    }

    /// A HID POS scanner, or a keyboard whose name says scanner or barcode,
    /// or whose vendor makes bar code scanners.
    pub fn looks_like_scanner(&self) -> bool {
        if self.is_hid_pos() || SCANNER_VENDORS.contains(&self.vendor_id) {
            return true;
        }
        let name = self.name.to_ascii_lowercase();
        ["scanner", "barcode", "bar code"]
            .iter()
            .any(|word| name.contains(word))
    }

    /// The source its scans are tagged with.
    pub fn source(&self) -> ScanSource {
        if self.is_hid_pos() {
            ScanSource::HidPos
        } else {
            ScanSource::HidKeyboard
        }
    }
}

/// Whether a scanner is being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerState {
    Connected(DeviceInfo),
    Disconnected,
}

/// What went wrong with a scanner device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// hidapi could not start (no HID support on this system).
    #[error("HID devices are unavailable: {0}")]
    Unavailable(String),
    /// No connected device matches the choice.
    #[error("no matching scanner is connected")]
    NotFound,
    /// The device is there but could not be opened (often: no permission on its hidraw node).
    #[error("could not open scanner {path}: {message}")]
    Open { path: String, message: String },
    /// Reading failed: the device was unplugged or broke.
    #[error("scanner read failed: {0}")]
    Read(String),
}

/// Which device to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first HID POS scanner, else the first keyboard-mode device that
    /// [looks like a scanner](DeviceInfo::looks_like_scanner). Never an
    /// ordinary keyboard: what a person types there (passwords included) must
    /// not turn into scans. Pick any other keyboard-mode scanner by `VidPid`.
    First,
    /// The device with this vendor and product id (its HID POS interface when it has one).
    VidPid(u16, u16),
}

/// An open device the reader pulls reports from.
pub trait HidDevice: Send {
    /// Reads one input report (report id first when the device numbers its
    /// reports) into `buf`, waiting at most `timeout_ms`. `Ok(0)` is a
    /// timeout; `Err` means the device is gone or broken.
    fn read_timeout(&mut self, buf: &mut [u8], timeout_ms: i32) -> Result<usize, DeviceError>;
}

/// Finds and opens the chosen device; called again after every disconnect.
pub trait DeviceOpener: Send {
    fn open(
        &mut self,
        want: &DeviceChoice,
    ) -> Result<(Box<dyn HidDevice>, DeviceInfo), DeviceError>;
}

impl<T: DeviceOpener + ?Sized> DeviceOpener for Box<T> {
    fn open(
        &mut self,
        want: &DeviceChoice,
    ) -> Result<(Box<dyn HidDevice>, DeviceInfo), DeviceError> {
        (**self).open(want)
    }
}

/// The scanners and keyboards hidapi can see, HID POS scanners first; empty
/// when hidapi cannot start.
pub fn list_devices() -> Vec<DeviceInfo> {
    match catch_unwind(hidapi::HidApi::new) {
        Ok(Ok(api)) => scanner_candidates(api.device_list()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "hidapi could not start: no HID device list");
            Vec::new()
        }
        Err(_) => {
            tracing::error!("hidapi panicked while listing devices");
            Vec::new()
        }
    }
}

/// Picks the device `want` names among candidates (HID POS before keyboards).
pub fn choose<'a>(candidates: &'a [DeviceInfo], want: &DeviceChoice) -> Option<&'a DeviceInfo> {
    let mut matching = candidates.iter().filter(|d| match *want {
        DeviceChoice::First => d.looks_like_scanner(),
        DeviceChoice::VidPid(vid, pid) => d.vendor_id == vid && d.product_id == pid,
    });
    let first = matching.next()?;
    if first.is_hid_pos() {
        return Some(first);
    }
    Some(matching.find(|d| d.is_hid_pos()).unwrap_or(first))
}

/// HID POS scanners and keyboards from hidapi's list, one entry per
/// interface, HID POS first.
fn scanner_candidates<'a>(list: impl Iterator<Item = &'a hidapi::DeviceInfo>) -> Vec<DeviceInfo> {
    let mut out: Vec<DeviceInfo> = Vec::new();
    for d in list {
        let page = d.usage_page();
        let wanted = page == hid_pos::USAGE_PAGE
            || (page == GENERIC_DESKTOP_PAGE && d.usage() == KEYBOARD_USAGE);
        if !wanted {
            continue;
        }
        let info = DeviceInfo {
            vendor_id: d.vendor_id(),
            product_id: d.product_id(),
            name: device_name(
                d.manufacturer_string(),
                d.product_string(),
                d.vendor_id(),
                d.product_id(),
            ),
            usage_page: page,
            path: d.path().to_string_lossy().into_owned(),
        };
        if !out
            .iter()
            .any(|o| o.path == info.path && o.usage_page == info.usage_page)
        {
            out.push(info);
        }
    }
    out.sort_by_key(|d| !d.is_hid_pos());
    out
}

fn device_name(manufacturer: Option<&str>, product: Option<&str>, vid: u16, pid: u16) -> String {
    fn clean(s: Option<&str>) -> Option<&str> {
        s.map(str::trim).filter(|s| !s.is_empty())
    }
    match (clean(manufacturer), clean(product)) {
        (Some(m), Some(p)) if p.starts_with(m) => p.to_owned(),
        (Some(m), Some(p)) => format!("{m} {p}"),
        (None, Some(p)) => p.to_owned(),
        (Some(m), None) => m.to_owned(),
        (None, None) => format!("{vid:04x}:{pid:04x}"),
    }
}

/// Opens scanners through hidapi, refreshing the device list on every attempt.
#[derive(Default)]
pub struct HidApiOpener {
    api: Option<hidapi::HidApi>,
}

impl HidApiOpener {
    pub fn new() -> Self {
        Self::default()
    }

    fn open_inner(
        &mut self,
        want: &DeviceChoice,
    ) -> Result<(Box<dyn HidDevice>, DeviceInfo), DeviceError> {
        let unavailable = |e: hidapi::HidError| DeviceError::Unavailable(e.to_string());
        let api = match self.api.take() {
            Some(mut api) => {
                api.refresh_devices().map_err(unavailable)?;
                self.api.insert(api)
            }
            None => self.api.insert(hidapi::HidApi::new().map_err(unavailable)?),
        };
        let candidates = scanner_candidates(api.device_list());
        let info = choose(&candidates, want)
            .ok_or(DeviceError::NotFound)?
            .clone();
        let open_error = |message: String| DeviceError::Open {
            path: info.path.clone(),
            message,
        };
        let path = CString::new(info.path.clone()).map_err(|e| open_error(e.to_string()))?;
        let device = api
            .open_path(&path)
            .map_err(|e| open_error(e.to_string()))?;
        Ok((Box::new(HidApiDevice { device }), info))
    }
}

impl DeviceOpener for HidApiOpener {
    fn open(
        &mut self,
        want: &DeviceChoice,
    ) -> Result<(Box<dyn HidDevice>, DeviceInfo), DeviceError> {
        match catch_unwind(AssertUnwindSafe(|| self.open_inner(want))) {
            Ok(result) => result,
            Err(_) => {
                self.api = None;
                Err(DeviceError::Unavailable("hidapi panicked".into()))
            }
        }
    }
}

struct HidApiDevice {
    device: hidapi::HidDevice,
}

impl HidDevice for HidApiDevice {
    fn read_timeout(&mut self, buf: &mut [u8], timeout_ms: i32) -> Result<usize, DeviceError> {
        self.device
            .read_timeout(buf, timeout_ms)
            .map_err(|e| DeviceError::Read(e.to_string()))
    }
}

/// How the reader thread paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderConfig {
    /// Wait between attempts to open the device (keep at or under 500 ms).
    pub reopen_every: Duration,
    /// How long one read waits for a report; bounds how fast `stop` is seen.
    pub read_timeout_ms: i32,
    /// A half-read code with no report for this long is dropped.
    pub partial_timeout: Duration,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        Self {
            reopen_every: Duration::from_millis(400),
            read_timeout_ms: 100,
            partial_timeout: Duration::from_secs(1),
        }
    }
}

/// The thread reading one scanner. [`ScannerReader::stop`] or dropping it ends the thread.
#[derive(Debug)]
pub struct ScannerReader {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ScannerReader {
    /// Starts reading the chosen device with the default pacing.
    pub fn spawn(
        opener: impl DeviceOpener + 'static,
        choice: DeviceChoice,
        sender: ScanSender,
        state: watch::Sender<ScannerState>,
    ) -> ScannerReader {
        Self::spawn_with(ReaderConfig::default(), opener, choice, sender, state)
    }

    /// Starts reading the chosen device. If the thread cannot be started the
    /// error is logged and the state stays `Disconnected`.
    pub fn spawn_with(
        config: ReaderConfig,
        opener: impl DeviceOpener + 'static,
        choice: DeviceChoice,
        sender: ScanSender,
        state: watch::Sender<ScannerState>,
    ) -> ScannerReader {
        let (stop_tx, stop_rx) = mpsc::channel();
        set_state(&state, ScannerState::Disconnected);
        let spawned = std::thread::Builder::new()
            .name("scanner-reader".into())
            .spawn({
                let state = state.clone();
                move || {
                    let mut reader = Reader {
                        config,
                        opener,
                        choice,
                        sender,
                        state,
                        stop: stop_rx,
                    };
                    reader.run();
                }
            });
        let thread = match spawned {
            Ok(thread) => Some(thread),
            Err(e) => {
                tracing::error!(error = %e, "could not start the scanner reader thread");
                None
            }
        };
        ScannerReader {
            stop: Some(stop_tx),
            thread,
        }
    }

    /// True while the reader thread runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Ends the reader and waits for it, at most about a second.
    pub fn stop(mut self) {
        self.stop.take();
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_millis(1200);
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            if thread.join().is_err() {
                tracing::error!("the scanner reader thread panicked");
            }
        } else {
            tracing::warn!(
                "the scanner reader did not stop within a second; leaving it to end on its own"
            );
        }
    }
}

impl Drop for ScannerReader {
    /// Tells the thread to end (within one read timeout) without waiting for it.
    fn drop(&mut self) {
        self.stop.take();
    }
}

fn set_state(state: &watch::Sender<ScannerState>, new: ScannerState) {
    state.send_if_modified(|current| {
        if *current == new {
            false
        } else {
            *current = new;
            true
        }
    });
}

/// Why a connected session ended.
enum SessionEnd {
    /// The device went away; try again.
    Gone,
    /// Stop was asked for, or nobody listens for scans any more.
    Finish,
}

enum Decoder {
    HidPos(HidPosDecoder),
    Keyboard(BootKeyboardDecoder),
}

impl Decoder {
    fn for_device(info: &DeviceInfo) -> Self {
        if info.is_hid_pos() {
            Self::HidPos(HidPosDecoder::new())
        } else {
            Self::Keyboard(BootKeyboardDecoder::new())
        }
    }

    fn feed(&mut self, report: &[u8]) -> Vec<String> {
        match self {
            Self::HidPos(d) => d.feed(report).into_iter().collect(),
            Self::Keyboard(d) => d.feed(report),
        }
    }

    fn has_partial(&self) -> bool {
        match self {
            Self::HidPos(d) => d.has_partial(),
            Self::Keyboard(d) => d.has_partial(),
        }
    }

    fn drop_partial(&mut self) {
        match self {
            Self::HidPos(d) => d.drop_partial(),
            Self::Keyboard(d) => d.drop_partial(),
        }
    }
}

struct Reader<O> {
    config: ReaderConfig,
    opener: O,
    choice: DeviceChoice,
    sender: ScanSender,
    state: watch::Sender<ScannerState>,
    stop: mpsc::Receiver<()>,
}

impl<O: DeviceOpener> Reader<O> {
    fn run(&mut self) {
        let mut last_error: Option<String> = None;
        loop {
            if self.stop_asked() || self.sender.is_closed() {
                break;
            }
            let opened = catch_unwind(AssertUnwindSafe(|| self.opener.open(&self.choice)));
            match opened {
                Ok(Ok((mut device, info))) => {
                    last_error = None;
                    tracing::info!(name = %info.name, path = %info.path, usage_page = info.usage_page, "scanner connected");
                    set_state(&self.state, ScannerState::Connected(info.clone()));
                    let end = self.read(device.as_mut(), &info);
                    set_state(&self.state, ScannerState::Disconnected);
                    if let SessionEnd::Finish = end {
                        break;
                    }
                    tracing::info!(name = %info.name, "scanner disconnected; waiting for it to come back");
                }
                Ok(Err(e)) => {
                    let message = e.to_string();
                    if last_error.as_ref() != Some(&message) {
                        tracing::info!(error = %message, "no scanner open yet; retrying");
                        last_error = Some(message);
                    }
                }
                Err(_) => tracing::error!("the scanner opener panicked; retrying"),
            }
            if self.wait_for_stop(self.config.reopen_every) {
                break;
            }
        }
        set_state(&self.state, ScannerState::Disconnected);
    }

    fn read(&mut self, device: &mut dyn HidDevice, info: &DeviceInfo) -> SessionEnd {
        let source = info.source();
        let mut decoder = Decoder::for_device(info);
        let mut buf = [0u8; 1024];
        let mut last_report = Instant::now();
        loop {
            if self.stop_asked() {
                return SessionEnd::Finish;
            }
            let timeout_ms = self.config.read_timeout_ms;
            let read = catch_unwind(AssertUnwindSafe(|| {
                device.read_timeout(&mut buf, timeout_ms)
            }));
            let n = match read {
                Ok(Ok(n)) => n.min(buf.len()),
                Ok(Err(e)) => {
                    if decoder.has_partial() {
                        tracing::info!("scanner gone mid-code: the partial code is dropped");
                    }
                    tracing::debug!(error = %e, "scanner read failed");
                    return SessionEnd::Gone;
                }
                Err(_) => {
                    tracing::error!("the scanner device panicked while reading; reopening");
                    return SessionEnd::Gone;
                }
            };
            if decoder.has_partial() && last_report.elapsed() >= self.config.partial_timeout {
                tracing::info!("scanner went quiet mid-code: the partial code is dropped");
                decoder.drop_partial();
            }
            if n == 0 {
                continue;
            }
            last_report = Instant::now();
            let report = &buf[..n];
            let codes = match catch_unwind(AssertUnwindSafe(|| decoder.feed(report))) {
                Ok(codes) => codes,
                Err(_) => {
                    tracing::error!(report = ?report, "a scanner report broke the decoder; starting it afresh");
                    decoder = Decoder::for_device(info);
                    continue;
                }
            };
            for code in codes {
                let scan = Scan {
                    code,
                    source,
                    at: OffsetDateTime::now_utc(),
                };
                if self.sender.send(scan).is_err() {
                    tracing::debug!("nobody receives scans any more: the scanner reader ends");
                    return SessionEnd::Finish;
                }
            }
        }
    }

    fn stop_asked(&self) -> bool {
        !matches!(self.stop.try_recv(), Err(mpsc::TryRecvError::Empty))
    }

    fn wait_for_stop(&self, wait: Duration) -> bool {
        !matches!(
            self.stop.recv_timeout(wait),
            Err(mpsc::RecvTimeoutError::Timeout)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot_keyboard::tests::{report, typed, RELEASE};
    use crate::hid_pos::tests::pos_report;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    enum Step {
        Report(Vec<u8>),
        /// The device is pulled out: this read and every later one on this handle fail.
        Unplug,
        Panic,
    }

    struct Bus {
        plugged: bool,
        /// Bumped on unplug, so handles opened before it stay dead after a replug.
        generation: u32,
        queue: VecDeque<Step>,
        opens: usize,
        info: DeviceInfo,
        panic_on_open: bool,
    }

    #[derive(Clone)]
    struct FakeBus(Arc<Mutex<Bus>>);

    impl FakeBus {
        fn new(info: DeviceInfo, plugged: bool) -> Self {
            Self(Arc::new(Mutex::new(Bus {
                plugged,
                generation: 0,
                queue: VecDeque::new(),
                opens: 0,
                info,
                panic_on_open: false,
            })))
        }

        fn push_reports<R: AsRef<[u8]>>(&self, reports: impl IntoIterator<Item = R>) {
            let mut bus = self.0.lock().unwrap();
            for r in reports {
                bus.queue.push_back(Step::Report(r.as_ref().to_vec()));
            }
        }

        fn push(&self, step: Step) {
            self.0.lock().unwrap().queue.push_back(step);
        }

        fn plug(&self) {
            self.0.lock().unwrap().plugged = true;
        }

        fn opens(&self) -> usize {
            self.0.lock().unwrap().opens
        }

        fn opener(&self) -> FakeOpener {
            FakeOpener { bus: self.clone() }
        }
    }

    struct FakeOpener {
        bus: FakeBus,
    }

    impl DeviceOpener for FakeOpener {
        fn open(
            &mut self,
            want: &DeviceChoice,
        ) -> Result<(Box<dyn HidDevice>, DeviceInfo), DeviceError> {
            let mut bus = self.bus.0.lock().unwrap();
            bus.opens += 1;
            if bus.panic_on_open {
                bus.panic_on_open = false;
                drop(bus);
                panic!("fake opener fault");
            }
            if !bus.plugged {
                return Err(DeviceError::NotFound);
            }
            if choose(std::slice::from_ref(&bus.info), want).is_none() {
                return Err(DeviceError::NotFound);
            }
            let device = FakeDevice {
                bus: self.bus.clone(),
                generation: bus.generation,
            };
            Ok((Box::new(device), bus.info.clone()))
        }
    }

    struct FakeDevice {
        bus: FakeBus,
        generation: u32,
    }

    impl HidDevice for FakeDevice {
        fn read_timeout(&mut self, buf: &mut [u8], timeout_ms: i32) -> Result<usize, DeviceError> {
            let step = {
                let mut bus = self.bus.0.lock().unwrap();
                if !bus.plugged || bus.generation != self.generation {
                    return Err(DeviceError::Read("No such device".into()));
                }
                let step = bus.queue.pop_front();
                if let Some(Step::Unplug) = step {
                    bus.plugged = false;
                    bus.generation += 1;
                }
                step
            };
            match step {
                Some(Step::Report(r)) => {
                    let n = r.len().min(buf.len());
                    buf[..n].copy_from_slice(&r[..n]);
                    Ok(n)
                }
                Some(Step::Unplug) => Err(DeviceError::Read("No such device".into())),
                Some(Step::Panic) => panic!("fake device fault"),
                None => {
                    let wait = u64::try_from(timeout_ms.clamp(0, 5)).unwrap();
                    std::thread::sleep(Duration::from_millis(wait));
                    Ok(0)
                }
            }
        }
    }

    fn keyboard_info() -> DeviceInfo {
        DeviceInfo {
            vendor_id: 0x0c2e,
            product_id: 0x0b61,
            name: "Honeywell 1900G (keyboard)".into(),
            usage_page: GENERIC_DESKTOP_PAGE,
            path: "/dev/hidraw7".into(),
        }
    }

    fn pos_info() -> DeviceInfo {
        DeviceInfo {
            vendor_id: 0x0c2e,
            product_id: 0x0b67,
            name: "Honeywell 1900G (HID POS)".into(),
            usage_page: hid_pos::USAGE_PAGE,
            path: "/dev/hidraw8".into(),
        }
    }

    struct Rig {
        bus: FakeBus,
        reader: ScannerReader,
        scans: UnboundedReceiver<Scan>,
        state: watch::Receiver<ScannerState>,
    }

    fn rig(info: DeviceInfo, plugged: bool, config: ReaderConfig) -> Rig {
        let bus = FakeBus::new(info, plugged);
        let (tx, scans) = unbounded_channel();
        let (state_tx, state) = watch::channel(ScannerState::Disconnected);
        let reader =
            ScannerReader::spawn_with(config, bus.opener(), DeviceChoice::First, tx, state_tx);
        Rig {
            bus,
            reader,
            scans,
            state,
        }
    }

    const WAIT: Duration = Duration::from_secs(3);

    fn next_scan(rx: &mut UnboundedReceiver<Scan>, within: Duration) -> Option<Scan> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(scan) = rx.try_recv() {
                return Some(scan);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn wait_state(
        rx: &watch::Receiver<ScannerState>,
        within: Duration,
        want: impl Fn(&ScannerState) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if want(&rx.borrow()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn codes(rx: &mut UnboundedReceiver<Scan>, count: usize) -> Vec<String> {
        (0..count)
            .map_while(|_| next_scan(rx, WAIT))
            .map(|s| s.code)
            .collect()
    }

    #[test]
    fn keyboard_scanner_fast_input_with_shift_and_gs() {
        let mut r = rig(keyboard_info(), true, ReaderConfig::default());
        let mut reports = typed("SB12345\n");
        reports.extend(typed("01"));
        reports.push(report(0x10, &[0x30])); // right Ctrl + ]: GS
        reports.push(RELEASE);
        reports.extend(typed("10AB-7\n"));
        r.bus.push_reports(&reports);

        let first = next_scan(&mut r.scans, WAIT).expect("first scan");
        assert_eq!(first.code, "SB12345");
        assert_eq!(first.source, ScanSource::HidKeyboard);
        assert_eq!(codes(&mut r.scans, 1), ["01\u{1d}10AB-7"]);
        assert_eq!(*r.state.borrow(), ScannerState::Connected(keyboard_info()));
        r.reader.stop();
    }

    #[test]
    fn keyboard_scanner_rollover_reports() {
        let mut r = rig(keyboard_info(), true, ReaderConfig::default());
        r.bus.push_reports([
            report(0x02, &[0x16, 0x05]),    // S B (shift held)
            report(0, &[0x05, 0x1e, 0x1f]), // b held, 1 2
            report(0, &[0x28]),
            RELEASE,
        ]);
        assert_eq!(codes(&mut r.scans, 1), ["SB12"]);
        r.reader.stop();
    }

    #[test]
    fn hid_pos_scanner_single_and_multi_report() {
        let mut r = rig(pos_info(), true, ReaderConfig::default());
        let long: Vec<u8> = (0..70u8).map(|i| b'0' + i % 10).collect();
        r.bus.push_reports([
            pos_report(b"SB12345", b"]C0", false),
            pos_report(&long[..56], b"]d2", true),
            pos_report(&long[56..], b"]d2", false),
        ]);
        let first = next_scan(&mut r.scans, WAIT).expect("first scan");
        assert_eq!(first.code, "SB12345");
        assert_eq!(first.source, ScanSource::HidPos);
        assert_eq!(codes(&mut r.scans, 1), [String::from_utf8(long).unwrap()]);
        r.reader.stop();
    }

    #[test]
    fn garbage_and_partial_reports_do_not_stop_the_reader() {
        let mut r = rig(keyboard_info(), true, ReaderConfig::default());
        r.bus.push_reports([
            vec![],
            vec![0xff; 3],
            vec![0x00, 0x00, 0x04],
            vec![0xde; 200],
            vec![0; 4096],
        ]);
        r.bus.push_reports(typed("OK9\n"));
        assert_eq!(codes(&mut r.scans, 1), ["OK9"]);
        assert!(r.reader.is_running());
        r.reader.stop();
    }

    #[test]
    fn unplug_mid_code_drops_the_partial_and_replug_works_within_2s() {
        let mut r = rig(keyboard_info(), true, ReaderConfig::default());
        r.bus.push_reports(typed("SB1\n"));
        r.bus.push_reports(typed("XY")); // no suffix: the scanner is pulled mid-code
        r.bus.push(Step::Unplug);
        assert_eq!(codes(&mut r.scans, 1), ["SB1"]);
        assert!(wait_state(&r.state, WAIT, |s| *s == ScannerState::Disconnected));
        // Nothing of the partial code comes out.
        assert!(next_scan(&mut r.scans, Duration::from_millis(300)).is_none());

        let replugged = Instant::now();
        r.bus.plug();
        r.bus.push_reports(typed("SB2\n"));
        let scan =
            next_scan(&mut r.scans, Duration::from_secs(2)).expect("a scan within 2 s of replug");
        assert_eq!(scan.code, "SB2");
        assert!(replugged.elapsed() < Duration::from_secs(2));
        assert_eq!(*r.state.borrow(), ScannerState::Connected(keyboard_info()));
        r.reader.stop();
    }

    #[test]
    fn hid_pos_unplug_between_continued_reports_drops_the_partial() {
        let mut r = rig(pos_info(), true, ReaderConfig::default());
        r.bus.push_reports([pos_report(&[b'A'; 56], b"]d2", true)]);
        r.bus.push(Step::Unplug);
        let unplugged =
            |s: &ScannerState| *s == ScannerState::Disconnected && !r.bus.0.lock().unwrap().plugged;
        assert!(wait_state(&r.state, WAIT, unplugged));
        r.bus.plug();
        r.bus.push_reports([pos_report(b"CB1", b"]C0", false)]);
        assert_eq!(codes(&mut r.scans, 1), ["CB1"]);
        r.reader.stop();
    }

    #[test]
    fn a_scanner_plugged_in_later_is_picked_up() {
        let mut r = rig(keyboard_info(), false, ReaderConfig::default());
        assert!(wait_state(&r.state, Duration::from_millis(500), |_| r
            .bus
            .opens()
            >= 1));
        assert_eq!(*r.state.borrow(), ScannerState::Disconnected);
        let plugged = Instant::now();
        r.bus.plug();
        assert!(wait_state(&r.state, Duration::from_secs(2), |s| matches!(
            s,
            ScannerState::Connected(_)
        )));
        assert!(plugged.elapsed() < Duration::from_secs(2));
        r.bus.push_reports(typed("P1X\n"));
        assert_eq!(codes(&mut r.scans, 1), ["P1X"]);
        r.reader.stop();
    }

    #[test]
    fn vid_pid_choice_only_opens_that_device() {
        let bus = FakeBus::new(keyboard_info(), true);
        let (tx, _scans) = unbounded_channel();
        let (state_tx, state) = watch::channel(ScannerState::Disconnected);
        let reader = ScannerReader::spawn(
            bus.opener(),
            DeviceChoice::VidPid(0x1234, 0x5678),
            tx,
            state_tx,
        );
        assert!(wait_state(&state, WAIT, |_| bus.opens() >= 2));
        assert_eq!(*state.borrow(), ScannerState::Disconnected);
        reader.stop();

        let (tx, _scans) = unbounded_channel();
        let (state_tx, state) = watch::channel(ScannerState::Disconnected);
        let reader = ScannerReader::spawn(
            bus.opener(),
            DeviceChoice::VidPid(0x0c2e, 0x0b61),
            tx,
            state_tx,
        );
        assert!(wait_state(&state, WAIT, |s| *s
            == ScannerState::Connected(keyboard_info())));
        reader.stop();
    }

    #[test]
    fn a_quiet_scanner_mid_code_drops_the_partial() {
        let config = ReaderConfig {
            partial_timeout: Duration::from_millis(150),
            ..ReaderConfig::default()
        };
        let mut r = rig(keyboard_info(), true, config);
        r.bus.push_reports(typed("AB"));
        std::thread::sleep(Duration::from_millis(400));
        r.bus.push_reports(typed("CD12\n"));
        assert_eq!(codes(&mut r.scans, 1), ["CD12"]);
        r.reader.stop();
    }

    #[test]
    fn a_panicking_device_or_opener_is_survived() {
        let mut r = rig(keyboard_info(), true, ReaderConfig::default());
        r.bus.push_reports(typed("ab"));
        r.bus.push(Step::Panic);
        r.bus.0.lock().unwrap().panic_on_open = true;
        r.bus.push_reports(typed("SB3\n"));
        // The panic ends the session (dropping "ab"); the next open panics too;
        // the one after that works and reads on.
        assert_eq!(codes(&mut r.scans, 1), ["SB3"]);
        assert!(r.reader.is_running());
        r.reader.stop();
    }

    #[test]
    fn stop_ends_the_thread_within_a_second() {
        let r = rig(keyboard_info(), true, ReaderConfig::default());
        assert!(wait_state(&r.state, WAIT, |s| matches!(
            s,
            ScannerState::Connected(_)
        )));
        let started = Instant::now();
        r.reader.stop();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(*r.state.borrow(), ScannerState::Disconnected);
    }

    #[test]
    fn drop_ends_the_thread_within_a_second() {
        let Rig {
            bus,
            reader,
            mut scans,
            state,
        } = rig(keyboard_info(), false, ReaderConfig::default());
        assert!(wait_state(&state, WAIT, |_| bus.opens() >= 1));
        let dropped = Instant::now();
        drop(reader);
        // The thread owned the scan sender: the channel closes when it ends.
        let deadline = dropped + Duration::from_secs(1);
        while !matches!(
            scans.try_recv(),
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected)
        ) {
            assert!(
                Instant::now() < deadline,
                "reader still running 1 s after drop"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn reader_ends_when_nobody_receives_scans() {
        let r = rig(keyboard_info(), true, ReaderConfig::default());
        assert!(wait_state(&r.state, WAIT, |s| matches!(
            s,
            ScannerState::Connected(_)
        )));
        drop(r.scans);
        r.bus.push_reports(typed("SB4\n"));
        let deadline = Instant::now() + WAIT;
        while r.reader.is_running() {
            assert!(
                Instant::now() < deadline,
                "reader still running with no receiver"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn choose_prefers_hid_pos() {
        let kb = keyboard_info();
        let pos = pos_info();
        let other = DeviceInfo {
            vendor_id: 0x05e0,
            product_id: 0x1200,
            name: "Zebra".into(),
            usage_page: GENERIC_DESKTOP_PAGE,
            path: "/dev/hidraw2".into(),
        };
        let list = [other.clone(), kb.clone(), pos.clone()];
        assert_eq!(choose(&list, &DeviceChoice::First), Some(&pos));
        assert_eq!(choose(&list[..2], &DeviceChoice::First), Some(&other));
        assert_eq!(
            choose(&list, &DeviceChoice::VidPid(0x0c2e, 0x0b61)),
            Some(&kb)
        );
        assert_eq!(
            choose(&list, &DeviceChoice::VidPid(0x05e0, 0x1200)),
            Some(&other)
        );
        assert_eq!(choose(&list, &DeviceChoice::VidPid(1, 2)), None);
        // An ordinary keyboard is never picked by First, only by its ids.
        let keyboard = DeviceInfo {
            vendor_id: 0x046d,
            product_id: 0xc31c,
            name: "Logitech USB Keyboard".into(),
            usage_page: GENERIC_DESKTOP_PAGE,
            path: "/dev/hidraw0".into(),
        };
        assert_eq!(
            choose(std::slice::from_ref(&keyboard), &DeviceChoice::First),
            None
        );
        let with_scanner = [keyboard.clone(), other.clone()];
        assert_eq!(choose(&with_scanner, &DeviceChoice::First), Some(&other));
        let named = DeviceInfo {
            vendor_id: 0x1a86,
            name: "USB Barcode Scanner".into(),
            ..keyboard.clone()
        };
        assert_eq!(
            choose(std::slice::from_ref(&named), &DeviceChoice::First),
            Some(&named)
        );
        assert_eq!(
            choose(
                std::slice::from_ref(&keyboard),
                &DeviceChoice::VidPid(0x046d, 0xc31c)
            ),
            Some(&keyboard)
        );
        // One device with both interfaces: the HID POS one is read.
        let both = [
            kb.clone(),
            DeviceInfo {
                usage_page: 0x8C,
                path: "/dev/hidraw9".into(),
                ..kb.clone()
            },
        ];
        assert_eq!(
            choose(&both, &DeviceChoice::VidPid(0x0c2e, 0x0b61)).map(|d| d.usage_page),
            Some(0x8C)
        );
    }

    #[test]
    fn device_names() {
        assert_eq!(
            device_name(Some("Honeywell"), Some("Honeywell 1900G"), 1, 2),
            "Honeywell 1900G"
        );
        assert_eq!(
            device_name(Some("Zebra "), Some("DS2208"), 1, 2),
            "Zebra DS2208"
        );
        assert_eq!(device_name(None, Some("Scanner"), 1, 2), "Scanner");
        assert_eq!(device_name(Some(""), None, 0x0c2e, 0x0b61), "0c2e:0b61");
    }

    #[test]
    fn device_list_and_real_opener_do_not_panic_without_devices() {
        // No hidraw nodes on CI: the list is empty and opening fails with an
        // error; on a machine with devices both still answer.
        let list = list_devices();
        assert!(list
            .iter()
            .all(|d| d.is_hid_pos() || d.usage_page == GENERIC_DESKTOP_PAGE));
        let mut opener = HidApiOpener::new();
        for _ in 0..2 {
            match opener.open(&DeviceChoice::VidPid(0xffff, 0xfffe)) {
                Err(DeviceError::NotFound | DeviceError::Unavailable(_)) => {}
                other => panic!("unexpected: {:?}", other.map(|(_, info)| info)),
            }
        }
    }
}
