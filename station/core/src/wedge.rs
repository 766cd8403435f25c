//! The keyboard-wedge fallback: keystrokes with timestamps from the UI, told
//! apart as a scanner burst or a person typing.
//!
//! A keyboard-wedge scanner types a code in one burst, a few milliseconds per
//! key, and ends it with its suffix (Enter, Tab, or CR LF). A person types a
//! key every 100 ms or more. The UI passes every key of its always-focused
//! input here with the event's timestamp (`KeyboardEvent.timeStamp`, in ms);
//! on a suffix the decoder says which it was:
//!
//! - [`WedgeOutcome::Scan`]: every key, and the suffix, came within
//!   `max_key_gap_ms` of the one before, nothing was erased, and the code is
//!   at least `min_length` long. The UI takes these characters out of the
//!   field and handles the code as a scan.
//! - [`WedgeOutcome::Typed`]: anything else ended by a suffix (slow keys, a
//!   pause anywhere, Backspace, too short). The UI leaves it as the person's
//!   typing. A burst that stalls part-way is never a scan: a cut code would
//!   otherwise pass as a real one.
//!
//! Keys without a suffix give nothing; [`WedgeDecoder::flush`] hands back what
//! is pending (for example when the UI clears its field).

/// Codes longer than this are no scan; the rest is kept as typing.
const MAX_CODE_CHARS: usize = 4096;

/// How bursts are told from typing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WedgeConfig {
    /// The longest gap between two keys of a scanner burst, in ms.
    pub max_key_gap_ms: f64,
    /// The shortest code a burst can be.
    pub min_length: usize,
}

impl Default for WedgeConfig {
    fn default() -> Self {
        Self {
            max_key_gap_ms: 50.0,
            min_length: 4,
        }
    }
}

/// One key as the UI saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WedgeKey {
    /// A key that typed a character (GS, ASCII 29, included).
    Char(char),
    Enter,
    Tab,
    Backspace,
    /// Shift, Ctrl and any other key that types nothing: not counted, no effect on timing.
    Ignore,
}

impl WedgeKey {
    /// Maps a DOM `KeyboardEvent` (`key`, `ctrlKey`) to a key: Ctrl+] is GS,
    /// Ctrl+M and Ctrl+J (CR, LF) are Enter, Ctrl+I is Tab, other Ctrl
    /// shortcuts and named keys (Shift, ArrowLeft, ...) are ignored.
    pub fn from_dom(key: &str, ctrl: bool) -> Self {
        match key {
            "Enter" => return Self::Enter,
            "Tab" => return Self::Tab,
            "Backspace" => return Self::Backspace,
            _ => {}
        }
        let mut chars = key.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Self::Ignore;
        };
        if ctrl {
            return match c.to_ascii_lowercase() {
                ']' => Self::Char('\u{1d}'),
                'm' | 'j' => Self::Enter,
                'i' => Self::Tab,
                _ => Self::Ignore,
            };
        }
        match c {
            '\r' | '\n' => Self::Enter,
            '\t' => Self::Tab,
            _ => Self::Char(c),
        }
    }
}

/// What a suffix ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WedgeOutcome {
    /// A scanner burst: the code, without its suffix.
    Scan(String),
    /// A person typed it: the text, without the Enter or Tab that ended it.
    Typed(String),
}

/// Tells scanner bursts from typing, one key at a time.
#[derive(Debug, Clone)]
pub struct WedgeDecoder {
    config: WedgeConfig,
    text: String,
    last_at: Option<f64>,
    /// A gap longer than a burst allows, Backspace, or an overlong run was seen.
    not_a_burst: bool,
}

impl WedgeDecoder {
    pub fn new(config: WedgeConfig) -> Self {
        Self {
            config,
            text: String::new(),
            last_at: None,
            not_a_burst: false,
        }
    }

    pub fn config(&self) -> WedgeConfig {
        self.config
    }

    /// Takes one key pressed at `at_ms` (the UI's clock, ms); returns an
    /// outcome when the key was a suffix ending something.
    pub fn feed(&mut self, key: WedgeKey, at_ms: f64) -> Option<WedgeOutcome> {
        match key {
            WedgeKey::Ignore => None,
            WedgeKey::Enter | WedgeKey::Tab => {
                if self.text.is_empty() {
                    // A bare suffix, or the LF of a CR LF.
                    self.reset();
                    return None;
                }
                self.time_key(at_ms);
                let text = std::mem::take(&mut self.text);
                let burst = !self.not_a_burst && text.chars().count() >= self.config.min_length;
                self.reset();
                Some(if burst {
                    WedgeOutcome::Scan(text)
                } else {
                    WedgeOutcome::Typed(text)
                })
            }
            WedgeKey::Backspace => {
                self.time_key(at_ms);
                self.text.pop();
                self.not_a_burst = true;
                None
            }
            WedgeKey::Char(c) => {
                self.time_key(at_ms);
                if self.text.len() >= MAX_CODE_CHARS {
                    self.not_a_burst = true;
                } else {
                    self.text.push(c);
                }
                None
            }
        }
    }

    /// What has been typed since the last outcome, if anything, as typing;
    /// the decoder starts afresh.
    pub fn flush(&mut self) -> Option<WedgeOutcome> {
        let text = std::mem::take(&mut self.text);
        self.reset();
        (!text.is_empty()).then_some(WedgeOutcome::Typed(text))
    }

    /// The characters since the last outcome.
    pub fn pending(&self) -> &str {
        &self.text
    }

    fn time_key(&mut self, at_ms: f64) {
        if let Some(last) = self.last_at {
            let gap = at_ms - last;
            // NaN or infinity counts as slow; a clock that stepped back counts as fast.
            let fast = gap.is_finite() && gap <= self.config.max_key_gap_ms;
            if !fast {
                self.not_a_burst = true;
            }
        }
        self.last_at = Some(at_ms);
    }

    fn reset(&mut self) {
        self.text.clear();
        self.last_at = None;
        self.not_a_burst = false;
    }
}

impl Default for WedgeDecoder {
    fn default() -> Self {
        Self::new(WedgeConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `text` one key every `step_ms` from `start_ms`, then `suffix`
    /// `step_ms` later; returns every outcome.
    fn keys(
        d: &mut WedgeDecoder,
        text: &str,
        start_ms: f64,
        step_ms: f64,
        suffix: Option<WedgeKey>,
    ) -> Vec<WedgeOutcome> {
        let mut at = start_ms;
        let mut out = Vec::new();
        for c in text.chars() {
            out.extend(d.feed(WedgeKey::Char(c), at));
            at += step_ms;
        }
        if let Some(s) = suffix {
            out.extend(d.feed(s, at));
        }
        out
    }

    #[test]
    fn scanner_burst_is_a_scan() {
        let mut d = WedgeDecoder::default();
        let out = keys(&mut d, "SB12345", 1000.0, 5.0, Some(WedgeKey::Enter));
        assert_eq!(out, [WedgeOutcome::Scan("SB12345".into())]);
        assert_eq!(d.pending(), "");
    }

    #[test]
    fn burst_ending_in_tab_is_a_scan() {
        let mut d = WedgeDecoder::default();
        let out = keys(&mut d, "CB000123", 0.0, 4.0, Some(WedgeKey::Tab));
        assert_eq!(out, [WedgeOutcome::Scan("CB000123".into())]);
    }

    #[test]
    fn person_typing_is_typed() {
        let mut d = WedgeDecoder::default();
        let out = keys(&mut d, "SB12345", 1000.0, 150.0, Some(WedgeKey::Enter));
        assert_eq!(out, [WedgeOutcome::Typed("SB12345".into())]);
    }

    #[test]
    fn burst_without_suffix_is_not_a_scan() {
        let mut d = WedgeDecoder::default();
        let out = keys(&mut d, "SB12345", 0.0, 5.0, None);
        assert!(out.is_empty());
        assert_eq!(d.pending(), "SB12345");
        assert_eq!(d.flush(), Some(WedgeOutcome::Typed("SB12345".into())));
        assert_eq!(d.flush(), None);
    }

    #[test]
    fn long_pause_mid_burst_is_not_a_scan() {
        let mut d = WedgeDecoder::default();
        let mut out = keys(&mut d, "SB12", 0.0, 5.0, None);
        out.extend(keys(&mut d, "345", 600.0, 5.0, Some(WedgeKey::Enter)));
        assert_eq!(out, [WedgeOutcome::Typed("SB12345".into())]);
        // The next burst is judged on its own.
        let out = keys(&mut d, "SB999", 5000.0, 5.0, Some(WedgeKey::Enter));
        assert_eq!(out, [WedgeOutcome::Scan("SB999".into())]);
    }

    #[test]
    fn late_suffix_is_not_a_scan() {
        let mut d = WedgeDecoder::default();
        let mut out = keys(&mut d, "SB12345", 0.0, 5.0, None);
        out.extend(d.feed(WedgeKey::Enter, 900.0));
        assert_eq!(out, [WedgeOutcome::Typed("SB12345".into())]);
    }

    #[test]
    fn cr_lf_suffix_is_one_scan() {
        let mut d = WedgeDecoder::default();
        let mut out = keys(&mut d, "SB5", 0.0, 5.0, None);
        out.extend(d.feed(WedgeKey::from_dom("s", false), 15.0));
        out.extend(d.feed(WedgeKey::from_dom("Enter", false), 20.0));
        out.extend(d.feed(WedgeKey::from_dom("j", true), 25.0));
        assert_eq!(out, [WedgeOutcome::Scan("SB5s".into())]);
    }

    #[test]
    fn group_separator_and_shift_keys_in_a_burst() {
        let mut d = WedgeDecoder::default();
        let mut at = 0.0;
        let mut out = Vec::new();
        for (key, ctrl) in [
            ("Shift", false),
            ("S", false),
            ("0", false),
            ("Control", true),
            ("]", true),
            ("1", false),
            ("Enter", false),
        ] {
            out.extend(d.feed(WedgeKey::from_dom(key, ctrl), at));
            at += 3.0;
        }
        assert_eq!(out, [WedgeOutcome::Scan("S0\u{1d}1".into())]);
    }

    #[test]
    fn ignored_keys_do_not_break_a_burst_even_when_slow() {
        let mut d = WedgeDecoder::default();
        let mut out = keys(&mut d, "AB", 0.0, 5.0, None);
        out.extend(d.feed(WedgeKey::Ignore, 500.0));
        out.extend(keys(&mut d, "CD", 10.0, 5.0, Some(WedgeKey::Enter)));
        assert_eq!(out, [WedgeOutcome::Scan("ABCD".into())]);
    }

    #[test]
    fn short_fast_entry_is_typed() {
        let mut d = WedgeDecoder::default();
        let out = keys(&mut d, "ok", 0.0, 5.0, Some(WedgeKey::Enter));
        assert_eq!(out, [WedgeOutcome::Typed("ok".into())]);
    }

    #[test]
    fn backspace_makes_it_typing() {
        let mut d = WedgeDecoder::default();
        let mut out = keys(&mut d, "SB123x", 0.0, 5.0, None);
        out.extend(d.feed(WedgeKey::Backspace, 30.0));
        out.extend(keys(&mut d, "4", 35.0, 5.0, Some(WedgeKey::Enter)));
        assert_eq!(out, [WedgeOutcome::Typed("SB1234".into())]);
    }

    #[test]
    fn bare_suffix_gives_nothing() {
        let mut d = WedgeDecoder::default();
        assert_eq!(d.feed(WedgeKey::Enter, 0.0), None);
        assert_eq!(d.feed(WedgeKey::Tab, 1.0), None);
    }

    #[test]
    fn thresholds_are_configurable() {
        let mut d = WedgeDecoder::new(WedgeConfig {
            max_key_gap_ms: 200.0,
            min_length: 2,
        });
        let out = keys(&mut d, "AB", 0.0, 150.0, Some(WedgeKey::Enter));
        assert_eq!(out, [WedgeOutcome::Scan("AB".into())]);
    }

    #[test]
    fn nan_timestamps_are_not_a_burst() {
        let mut d = WedgeDecoder::default();
        let mut out = keys(&mut d, "SB1", 0.0, 5.0, None);
        out.extend(d.feed(WedgeKey::Char('2'), f64::NAN));
        out.extend(d.feed(WedgeKey::Enter, 20.0));
        assert_eq!(out, [WedgeOutcome::Typed("SB12".into())]);
    }

    #[test]
    fn dom_key_mapping() {
        assert_eq!(WedgeKey::from_dom("a", false), WedgeKey::Char('a'));
        assert_eq!(WedgeKey::from_dom("é", false), WedgeKey::Char('é'));
        assert_eq!(WedgeKey::from_dom("]", true), WedgeKey::Char('\u{1d}'));
        assert_eq!(
            WedgeKey::from_dom("\u{1d}", false),
            WedgeKey::Char('\u{1d}')
        );
        assert_eq!(WedgeKey::from_dom("M", true), WedgeKey::Enter);
        assert_eq!(WedgeKey::from_dom("i", true), WedgeKey::Tab);
        assert_eq!(WedgeKey::from_dom("c", true), WedgeKey::Ignore);
        assert_eq!(WedgeKey::from_dom("Shift", false), WedgeKey::Ignore);
        assert_eq!(WedgeKey::from_dom("", false), WedgeKey::Ignore);
    }

    proptest! {
        #[test]
        fn random_keys_never_panic(
            events in proptest::collection::vec((0u8..6, any::<char>(), any::<f64>()), 0..200)
        ) {
            let mut d = WedgeDecoder::default();
            for (kind, c, at) in events {
                let key = match kind {
                    0 => WedgeKey::Enter,
                    1 => WedgeKey::Tab,
                    2 => WedgeKey::Backspace,
                    3 => WedgeKey::Ignore,
                    _ => WedgeKey::Char(c),
                };
                if let Some(WedgeOutcome::Scan(code) | WedgeOutcome::Typed(code)) = d.feed(key, at) {
                    prop_assert!(!code.is_empty());
                }
            }
        }
    }
}
