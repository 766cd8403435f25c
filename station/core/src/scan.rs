//! A scan as every source hands it on, the channel all sources share, and
//! the debouncer that makes a double read one scan.

use time::{Duration, OffsetDateTime};

/// The window within which the same code read twice is one scan.
pub const DEFAULT_DEBOUNCE: Duration = Duration::milliseconds(1500);

/// Where a scan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanSource {
    /// A HID POS scanner (usage page 0x8C) read through hidapi.
    HidPos,
    /// A keyboard-mode scanner read through hidapi (boot-keyboard reports).
    HidKeyboard,
    /// Keystrokes typed into the UI by a keyboard-wedge scanner.
    Wedge,
}

/// One code read by a scanner.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// The decoded code; a GS1 group separator (ASCII 29) is kept as is.
    pub code: String,
    pub source: ScanSource,
    pub at: OffsetDateTime,
}

/// Every source sends its scans into one of these; the station reads the other end.
pub type ScanSender = tokio::sync::mpsc::UnboundedSender<Scan>;

/// The same code twice within the window is one scan.
///
/// Put one debouncer where all sources meet (the receiving end of the scan
/// channel), so that a keyboard-mode scanner seen both through hidapi and as
/// keystrokes in the UI still counts once. Only the last accepted code is
/// remembered: `A`, `A` is one scan, `A`, `B` are two, and a duplicate does not
/// extend the window.
#[derive(Debug, Clone)]
pub struct Debouncer {
    window: Duration,
    last: Option<(String, OffsetDateTime)>,
}

impl Debouncer {
    pub fn new(window: Duration) -> Self {
        Self { window, last: None }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// True when `code` read at `at` is a new scan; false when it repeats the
    /// last accepted code within the window. Timestamps from different sources
    /// may arrive slightly out of order, so the window counts both ways.
    pub fn accept(&mut self, code: &str, at: OffsetDateTime) -> bool {
        if let Some((last_code, last_at)) = &self.last {
            if last_code == code && (at - *last_at).abs() < self.window {
                return false;
            }
        }
        self.last = Some((code.to_owned(), at));
        true
    }

    /// Forget the last code, so that the next read of it counts.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

impl Default for Debouncer {
    fn default() -> Self {
        Self::new(DEFAULT_DEBOUNCE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-03-01 08:00:00 UTC);

    #[test]
    fn same_code_within_window_is_one_scan() {
        let mut d = Debouncer::default();
        assert!(d.accept("SB12345", T0));
        assert!(!d.accept("SB12345", T0 + Duration::milliseconds(10)));
        assert!(!d.accept("SB12345", T0 + Duration::milliseconds(1499)));
    }

    #[test]
    fn same_code_after_window_is_two_scans() {
        let mut d = Debouncer::default();
        assert!(d.accept("SB12345", T0));
        assert!(d.accept("SB12345", T0 + Duration::milliseconds(1500)));
        assert!(!d.accept("SB12345", T0 + Duration::milliseconds(2000)));
        assert!(d.accept("SB12345", T0 + Duration::milliseconds(3100)));
    }

    #[test]
    fn a_suppressed_duplicate_does_not_extend_the_window() {
        let mut d = Debouncer::default();
        assert!(d.accept("SB1", T0));
        assert!(!d.accept("SB1", T0 + Duration::milliseconds(1000)));
        assert!(d.accept("SB1", T0 + Duration::milliseconds(1600)));
    }

    #[test]
    fn different_codes_are_both_scans() {
        let mut d = Debouncer::default();
        assert!(d.accept("SB12345", T0));
        assert!(d.accept("CB00001", T0 + Duration::milliseconds(100)));
        // The parent again after a child is a deliberate scan.
        assert!(d.accept("SB12345", T0 + Duration::milliseconds(200)));
    }

    #[test]
    fn window_is_configurable() {
        let mut d = Debouncer::new(Duration::milliseconds(300));
        assert!(d.accept("X1", T0));
        assert!(!d.accept("X1", T0 + Duration::milliseconds(299)));
        assert!(d.accept("X1", T0 + Duration::milliseconds(300)));
    }

    #[test]
    fn out_of_order_timestamps_within_window_are_one_scan() {
        let mut d = Debouncer::default();
        assert!(d.accept("SB9", T0 + Duration::milliseconds(20)));
        assert!(!d.accept("SB9", T0));
        // A clock that jumped far back does not swallow scans.
        assert!(d.accept("SB9", T0 - Duration::hours(1)));
    }

    #[test]
    fn reset_forgets_the_last_code() {
        let mut d = Debouncer::default();
        assert!(d.accept("SB1", T0));
        d.reset();
        assert!(d.accept("SB1", T0 + Duration::milliseconds(5)));
    }
}
