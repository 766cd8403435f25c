//! Keyboard-mode scanners: boot-keyboard reports (US layout) decoded into
//! codes ended by the scanner's suffix.
//!
//! A boot-keyboard input report is 8 bytes: the modifier bits, a reserved
//! byte, and up to six key codes (HID Usage Tables, Keyboard/Keypad page). A
//! key is pressed in the first report it appears in; the same key in the
//! following reports is the key held, not pressed again; keys that newly
//! appear in one report are pressed in array order (rollover). A report
//! holding ErrorRollOver (0x01), POSTFail (0x02) or ErrorUndefined (0x03) says
//! nothing about the keys and is ignored, as are reports of any other size
//! (a 9-byte report is taken as report id + boot report).
//!
//! Enter, keypad Enter, Tab, and the control characters CR, LF and HT end a
//! code; an end with nothing typed before it is dropped, so a CR LF suffix
//! ends one code. Ctrl+key gives the ASCII control characters scanners use in
//! GS1 and ISO 15434 data: Ctrl+] is GS (29), Ctrl+^ is RS (30), Ctrl+D is EOT.
//! Alt held with keypad digits (Alt+0029) gives the character with that
//! number when Alt is released.

const REPORT_LEN: usize = 8;
const MAX_CODE_CHARS: usize = 4096;

const LEFT_CTRL: u8 = 0x01;
const LEFT_SHIFT: u8 = 0x02;
const LEFT_ALT: u8 = 0x04;
const LEFT_GUI: u8 = 0x08;
const RIGHT_CTRL: u8 = 0x10;
const RIGHT_SHIFT: u8 = 0x20;
const RIGHT_ALT: u8 = 0x40;
const RIGHT_GUI: u8 = 0x80;
const CTRL: u8 = LEFT_CTRL | RIGHT_CTRL;
const SHIFT: u8 = LEFT_SHIFT | RIGHT_SHIFT;
const ALT: u8 = LEFT_ALT | RIGHT_ALT;
const GUI: u8 = LEFT_GUI | RIGHT_GUI;

/// Key codes (usage ids on the Keyboard/Keypad page) the decoder acts on.
pub mod key {
    pub const ERROR_ROLL_OVER: u8 = 0x01;
    pub const POST_FAIL: u8 = 0x02;
    pub const ERROR_UNDEFINED: u8 = 0x03;
    pub const A: u8 = 0x04;
    pub const Z: u8 = 0x1D;
    pub const N1: u8 = 0x1E;
    pub const N0: u8 = 0x27;
    pub const ENTER: u8 = 0x28;
    pub const BACKSPACE: u8 = 0x2A;
    pub const TAB: u8 = 0x2B;
    pub const SPACE: u8 = 0x2C;
    pub const MINUS: u8 = 0x2D;
    pub const LEFT_BRACKET: u8 = 0x2F;
    pub const RIGHT_BRACKET: u8 = 0x30;
    pub const BACKSLASH: u8 = 0x31;
    pub const NON_US_HASH: u8 = 0x32;
    pub const SLASH: u8 = 0x38;
    pub const KEYPAD_ENTER: u8 = 0x58;
    pub const KEYPAD_1: u8 = 0x59;
    pub const KEYPAD_0: u8 = 0x62;
    pub const LEFT_CTRL: u8 = 0xE0;
    pub const RIGHT_GUI: u8 = 0xE7;
}

/// What pressing one key (with the modifiers of its report) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Press {
    Char(char),
    End,
    Backspace,
    AltDigit(u32),
    Nothing,
}

/// Turns boot-keyboard reports into codes.
#[derive(Debug, Default, Clone)]
pub struct BootKeyboardDecoder {
    /// Keys down in the last accepted report (zeros removed).
    down: Vec<u8>,
    text: String,
    /// Keypad digits typed while Alt is held, if any.
    alt_code: Option<u32>,
}

impl BootKeyboardDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one input report as read from the device and returns the codes it
    /// completed (usually none, at most a few).
    pub fn feed(&mut self, report: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        let report = match report.len() {
            REPORT_LEN => report,
            n if n == REPORT_LEN + 1 => &report[1..],
            _ => return done,
        };
        let keys = &report[2..];
        if keys.iter().any(|k| {
            matches!(
                *k,
                key::ERROR_ROLL_OVER | key::POST_FAIL | key::ERROR_UNDEFINED
            )
        }) {
            return done;
        }

        // Some keyboards also list modifier keys in the key array.
        let mut modifiers = report[0];
        for k in keys {
            if (key::LEFT_CTRL..=key::RIGHT_GUI).contains(k) {
                modifiers |= 1 << (k - key::LEFT_CTRL);
            }
        }

        for (i, &k) in keys.iter().enumerate() {
            let already_counted = keys[..i].contains(&k);
            if k == 0 || already_counted || self.down.contains(&k) {
                continue;
            }
            if (key::LEFT_CTRL..=key::RIGHT_GUI).contains(&k) {
                continue;
            }
            match press(k, modifiers) {
                Press::Char(c) => self.push(c, &mut done),
                Press::End => self.end(&mut done),
                Press::Backspace => {
                    self.text.pop();
                }
                Press::AltDigit(d) => {
                    let code = self.alt_code.unwrap_or(0);
                    self.alt_code = Some(code.saturating_mul(10).saturating_add(d) % 1000);
                }
                Press::Nothing => {}
            }
        }

        if modifiers & ALT == 0 {
            if let Some(code) = self.alt_code.take() {
                match u8::try_from(code).ok().filter(|b| *b != 0).map(char::from) {
                    Some(c) => self.push(c, &mut done),
                    None => tracing::debug!(code, "Alt+keypad code out of range: ignored"),
                }
            }
        }

        self.down.clear();
        self.down.extend(keys.iter().copied().filter(|k| *k != 0));
        done
    }

    /// True while characters of a code have come without its suffix.
    pub fn has_partial(&self) -> bool {
        !self.text.is_empty() || self.alt_code.is_some()
    }

    /// Forget a half-typed code; the keys held stay known, so a held key is
    /// not pressed again.
    pub fn drop_partial(&mut self) {
        self.text.clear();
        self.alt_code = None;
    }

    fn push(&mut self, c: char, done: &mut Vec<String>) {
        if matches!(c, '\r' | '\n' | '\t') {
            self.end(done);
            return;
        }
        if self.text.len() >= MAX_CODE_CHARS {
            tracing::warn!("keyboard-mode code longer than {MAX_CODE_CHARS} characters: dropped");
            self.text.clear();
            return;
        }
        self.text.push(c);
    }

    fn end(&mut self, done: &mut Vec<String>) {
        if !self.text.is_empty() {
            done.push(std::mem::take(&mut self.text));
        }
    }
}

fn press(k: u8, modifiers: u8) -> Press {
    let shift = modifiers & SHIFT != 0;
    let ctrl = modifiers & CTRL != 0;
    let alt = modifiers & ALT != 0;
    let gui = modifiers & GUI != 0;
    match k {
        key::ENTER | key::KEYPAD_ENTER | key::TAB => Press::End,
        key::BACKSPACE => Press::Backspace,
        key::KEYPAD_1..=key::KEYPAD_0 if alt => {
            let digit = if k == key::KEYPAD_0 {
                0
            } else {
                u32::from(k - key::KEYPAD_1 + 1)
            };
            Press::AltDigit(digit)
        }
        _ if gui || alt => Press::Nothing,
        _ if ctrl => control_char(k).map_or(Press::Nothing, Press::Char),
        _ => us_char(k, shift).map_or(Press::Nothing, Press::Char),
    }
}

/// Ctrl+key as the ASCII control character it types.
fn control_char(k: u8) -> Option<char> {
    let byte = match k {
        key::A..=key::Z => k - key::A + 1,
        key::LEFT_BRACKET => 27,
        key::BACKSLASH | key::NON_US_HASH => 28,
        key::RIGHT_BRACKET => 29,
        0x23 => 30, // Ctrl+6 / Ctrl+^
        key::MINUS | key::SLASH => 31,
        _ => return None,
    };
    Some(char::from(byte))
}

/// The character a key types on a US keyboard.
fn us_char(k: u8, shift: bool) -> Option<char> {
    const LOWER: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";
    const DIGITS: &[u8; 10] = b"1234567890";
    const SHIFTED_DIGITS: &[u8; 10] = b"!@#$%^&*()";
    // 0x2C..=0x38: space - = [ ] \ (non-US #) ; ' ` , . /
    const PUNCT: &[u8; 13] = b" -=[]\\\\;'`,./";
    const SHIFTED_PUNCT: &[u8; 13] = b" _+{}||:\"~<>?";
    // 0x54..=0x63: keypad / * - + Enter 1-9 0 .
    const KEYPAD: &[u8; 16] = b"/*-+\n1234567890.";

    let i = usize::from(k);
    let byte = match k {
        key::A..=key::Z => {
            let c = LOWER[i - usize::from(key::A)];
            if shift {
                c.to_ascii_uppercase()
            } else {
                c
            }
        }
        key::N1..=key::N0 => {
            let table = if shift { SHIFTED_DIGITS } else { DIGITS };
            table[i - usize::from(key::N1)]
        }
        key::SPACE..=key::SLASH => {
            let table = if shift { SHIFTED_PUNCT } else { PUNCT };
            table[i - usize::from(key::SPACE)]
        }
        0x54..=0x63 => KEYPAD[i - 0x54],
        _ => return None,
    };
    Some(char::from(byte))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) const RELEASE: [u8; 8] = [0; 8];

    pub(crate) fn report(modifiers: u8, keys: &[u8]) -> [u8; 8] {
        let mut r = [0u8; 8];
        r[0] = modifiers;
        r[2..2 + keys.len()].copy_from_slice(keys);
        r
    }

    /// The reports a scanner sends to type `text`: each key pressed (with
    /// shift when needed) then released, the way most keyboard-mode scanners do.
    pub(crate) fn typed(text: &str) -> Vec<[u8; 8]> {
        let mut out = Vec::new();
        for c in text.chars() {
            let (m, k) = key_for(c);
            out.push(report(m, &[k]));
            out.push(RELEASE);
        }
        out
    }

    fn key_for(c: char) -> (u8, u8) {
        match c {
            'a'..='z' => (0, key::A + (c as u8 - b'a')),
            'A'..='Z' => (LEFT_SHIFT, key::A + (c as u8 - b'A')),
            '1'..='9' => (0, key::N1 + (c as u8 - b'1')),
            '0' => (0, key::N0),
            '-' => (0, key::MINUS),
            '\n' => (0, key::ENTER),
            '\t' => (0, key::TAB),
            '\u{1d}' => (LEFT_CTRL, key::RIGHT_BRACKET),
            _ => panic!("no key for {c:?} in the test helper"),
        }
    }

    fn feed_all<'a>(
        d: &mut BootKeyboardDecoder,
        reports: impl IntoIterator<Item = &'a [u8; 8]>,
    ) -> Vec<String> {
        reports.into_iter().flat_map(|r| d.feed(r)).collect()
    }

    #[test]
    fn fast_input_press_release() {
        let mut d = BootKeyboardDecoder::new();
        assert_eq!(feed_all(&mut d, &typed("sb12345\n")), ["sb12345"]);
        assert!(!d.has_partial());
    }

    #[test]
    fn shift_left_and_right() {
        let mut d = BootKeyboardDecoder::new();
        let reports = [
            report(LEFT_SHIFT, &[0x16]), // S
            RELEASE,
            report(RIGHT_SHIFT, &[0x05]), // B
            RELEASE,
            report(0, &[0x1E]), // 1
            RELEASE,
            report(RIGHT_SHIFT, &[0x1F]), // @
            RELEASE,
            report(LEFT_SHIFT, &[0x2D]), // _
            RELEASE,
            report(0, &[0x05]), // b
            RELEASE,
            report(0, &[key::ENTER]),
            RELEASE,
        ];
        assert_eq!(feed_all(&mut d, &reports), ["SB1@_b"]);
    }

    #[test]
    fn shift_pressed_in_its_own_report_first() {
        let mut d = BootKeyboardDecoder::new();
        let reports = [
            report(LEFT_SHIFT, &[]),
            report(LEFT_SHIFT, &[0x04]),
            report(LEFT_SHIFT, &[]),
            RELEASE,
            report(0, &[0x04]),
            RELEASE,
            report(0, &[key::TAB]),
            RELEASE,
        ];
        assert_eq!(feed_all(&mut d, &reports), ["Aa"]);
    }

    #[test]
    fn held_key_is_one_press_until_released() {
        let mut d = BootKeyboardDecoder::new();
        let a = report(0, &[0x04]);
        let reports = [
            a,
            a,
            a,
            RELEASE,
            a,
            RELEASE,
            report(0, &[key::ENTER]),
            RELEASE,
        ];
        assert_eq!(feed_all(&mut d, &reports), ["aa"]);
    }

    #[test]
    fn changing_shift_while_a_key_is_held_is_not_a_press() {
        let mut d = BootKeyboardDecoder::new();
        let reports = [
            report(0, &[0x04]),
            report(LEFT_SHIFT, &[0x04]),
            RELEASE,
            report(0, &[key::ENTER]),
        ];
        assert_eq!(feed_all(&mut d, &reports), ["a"]);
    }

    #[test]
    fn rollover_new_keys_in_array_order() {
        let mut d = BootKeyboardDecoder::new();
        let reports = [
            report(0, &[0x04, 0x05]),       // a b
            report(0, &[0x05, 0x06]),       // c (b held)
            report(0, &[0x06, 0x07, 0x04]), // d a (c held)
            report(0, &[0x07]),             // nothing new
            report(0, &[0x07, 0x1E, 0x1F]), // 1 2
            report(0, &[key::ENTER]),
            RELEASE,
        ];
        assert_eq!(feed_all(&mut d, &reports), ["abcda12"]);
    }

    #[test]
    fn rollover_with_the_suffix_in_the_same_report() {
        let mut d = BootKeyboardDecoder::new();
        let reports = [
            report(0, &[0x1E, 0x1F, key::ENTER, 0x20, 0x21, key::ENTER]),
            RELEASE,
        ];
        // A key listed twice in one report is one press: "12" ends, then "34"
        // is still waiting for its own suffix.
        assert_eq!(feed_all(&mut d, &reports), ["12"]);
        assert!(d.has_partial());
        assert_eq!(feed_all(&mut d, &[report(0, &[key::KEYPAD_ENTER])]), ["34"]);
    }

    #[test]
    fn group_separator_from_left_or_right_ctrl() {
        let mut d = BootKeyboardDecoder::new();
        let mut reports = typed("01");
        reports.push(report(LEFT_CTRL, &[key::RIGHT_BRACKET]));
        reports.push(RELEASE);
        reports.extend(typed("10"));
        reports.push(report(RIGHT_CTRL, &[key::RIGHT_BRACKET]));
        reports.push(RELEASE);
        reports.extend(typed("21\n"));
        assert_eq!(feed_all(&mut d, &reports), ["01\u{1d}10\u{1d}21"]);
    }

    #[test]
    fn group_separator_as_alt_keypad_code() {
        let mut d = BootKeyboardDecoder::new();
        let mut reports = typed("A");
        for k in [key::KEYPAD_0, key::KEYPAD_0, 0x5A, 0x61] {
            // Alt+0 0 2 9, each digit pressed and released with Alt held.
            reports.push(report(LEFT_ALT, &[k]));
            reports.push(report(LEFT_ALT, &[]));
        }
        reports.push(RELEASE);
        reports.extend(typed("B\n"));
        assert_eq!(feed_all(&mut d, &reports), ["A\u{1d}B"]);
    }

    #[test]
    fn cr_lf_suffix_is_one_end() {
        let mut d = BootKeyboardDecoder::new();
        let mut reports = typed("SB7");
        reports.push(report(0, &[key::ENTER]));
        reports.push(RELEASE);
        reports.push(report(LEFT_CTRL, &[0x0D])); // Ctrl+J: LF
        reports.push(RELEASE);
        reports.extend(typed("SB8\n"));
        assert_eq!(feed_all(&mut d, &reports), ["SB7", "SB8"]);
    }

    #[test]
    fn every_suffix_ends_a_code() {
        for suffix in [key::ENTER, key::TAB, key::KEYPAD_ENTER] {
            let mut d = BootKeyboardDecoder::new();
            let mut reports = typed("X9");
            reports.push(report(0, &[suffix]));
            reports.push(RELEASE);
            assert_eq!(feed_all(&mut d, &reports), ["X9"], "suffix {suffix:#04x}");
        }
        let mut d = BootKeyboardDecoder::new();
        let mut reports = typed("X9");
        reports.push(report(LEFT_CTRL, &[0x10])); // Ctrl+M: CR
        assert_eq!(feed_all(&mut d, &reports), ["X9"]);
    }

    #[test]
    fn error_rollover_report_is_ignored() {
        let mut d = BootKeyboardDecoder::new();
        let reports = [
            report(0, &[0x04]),
            report(0, &[1, 1, 1, 1, 1, 1]),
            report(0, &[0x04, 0x05]), // a still held, b new
            RELEASE,
            report(0, &[key::ENTER]),
        ];
        assert_eq!(feed_all(&mut d, &reports), ["ab"]);
    }

    #[test]
    fn short_long_and_garbage_reports_never_break_decoding() {
        let mut d = BootKeyboardDecoder::new();
        assert!(d.feed(&[]).is_empty());
        assert!(d.feed(&[0x02, 0x00, 0x04]).is_empty()); // truncated: ignored
        assert!(d.feed(&[0xff; 7]).is_empty());
        assert!(d.feed(&[0xff; 64]).is_empty());
        assert!(d
            .feed(&[0x00, 0x00, 0xA5, 0xFF, 0x70, 0x99, 0xE9, 0x64])
            .is_empty());
        let mut reports = vec![RELEASE];
        reports.extend(typed("OK1\n"));
        assert_eq!(feed_all(&mut d, &reports), ["OK1"]);
    }

    #[test]
    fn nine_byte_report_with_report_id() {
        let mut d = BootKeyboardDecoder::new();
        let mut out = Vec::new();
        for r in typed("Q7\n") {
            let mut with_id = vec![0x01];
            with_id.extend_from_slice(&r);
            out.extend(d.feed(&with_id));
        }
        assert_eq!(out, ["Q7"]);
    }

    #[test]
    fn modifier_keys_in_the_key_array_count_as_modifiers() {
        let mut d = BootKeyboardDecoder::new();
        let reports = [
            report(0, &[key::LEFT_CTRL + 1, 0x04]), // Left Shift listed as a key
            RELEASE,
            report(0, &[key::ENTER]),
        ];
        assert_eq!(feed_all(&mut d, &reports), ["A"]);
    }

    #[test]
    fn gui_and_alt_shortcuts_type_nothing() {
        let mut d = BootKeyboardDecoder::new();
        let reports = [
            report(LEFT_GUI, &[0x04]),
            RELEASE,
            report(LEFT_ALT, &[0x05]),
            RELEASE,
            report(0, &[0x06]),
            RELEASE,
            report(0, &[key::ENTER]),
        ];
        assert_eq!(feed_all(&mut d, &reports), ["c"]);
    }

    #[test]
    fn drop_partial_forgets_text_but_not_held_keys() {
        let mut d = BootKeyboardDecoder::new();
        assert!(d.feed(&report(0, &[0x04])).is_empty());
        d.drop_partial();
        assert!(!d.has_partial());
        assert!(d.feed(&report(0, &[0x04])).is_empty()); // still held: no press
        let rest = feed_all(
            &mut d,
            &[RELEASE, report(0, &[0x05]), report(0, &[key::ENTER])],
        );
        assert_eq!(rest, ["b"]);
    }

    #[test]
    fn every_printable_ascii_character_round_trips() {
        // Find, for every printable character, the key and shift that type it,
        // then type them all and compare.
        let mut reports = Vec::new();
        let mut expected = String::new();
        for c in (0x20u8..0x7f).map(char::from) {
            let found = (0u8..=0xff)
                .flat_map(|k| [(k, false), (k, true)])
                .find(|(k, s)| !(0x54..=0x63).contains(k) && us_char(*k, *s) == Some(c));
            let (k, s) = found.unwrap_or_else(|| panic!("no key types {c:?}"));
            reports.push(report(if s { LEFT_SHIFT } else { 0 }, &[k]));
            reports.push(RELEASE);
            expected.push(c);
        }
        reports.push(report(0, &[key::ENTER]));
        let mut d = BootKeyboardDecoder::new();
        assert_eq!(feed_all(&mut d, &reports), [expected]);
    }

    proptest! {
        #[test]
        fn random_reports_never_panic(
            reports in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..60)
        ) {
            let mut d = BootKeyboardDecoder::new();
            for r in &reports {
                for code in d.feed(r) {
                    prop_assert!(!code.is_empty());
                }
            }
        }

        #[test]
        fn random_eight_byte_reports_never_panic(
            reports in proptest::collection::vec(any::<[u8; 8]>(), 0..80)
        ) {
            let mut d = BootKeyboardDecoder::new();
            for r in &reports {
                let _ = d.feed(r);
            }
        }
    }
}
