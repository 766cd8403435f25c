//! HID POS scanners (usage page 0x8C, bar code scanner): scanned-data
//! reports decoded into codes.
//!
//! The scanned-data input report (HID Point of Sale Usage Tables; the layout
//! Honeywell, Zebra and Access-IS scanners send) is 64 bytes with its report id:
//!
//! | byte  | meaning                                           |
//! |-------|---------------------------------------------------|
//! | 0     | report id, 0x02                                   |
//! | 1     | length of the data in this report (0..=56)        |
//! | 2..=4 | symbology identifier (AIM, e.g. `]d2`)            |
//! | 5..=60| decoded data, NUL padded                          |
//! | 61    | further (vendor) symbology identifier             |
//! | 62    | reserved                                          |
//! | 63    | bit 0: decode data continued (more reports follow)|
//!
//! A code longer than 56 bytes comes in several reports; all but the last
//! have the continued flag set. The decoder is liberal: a length byte of 0 or
//! beyond the report means "all the data bytes there are", trailing NULs are
//! stripped, a report shorter than 64 bytes carries no continued flag, and
//! anything else (other report ids, short or garbage reports) is ignored.

/// The report id of the scanned-data report.
pub const SCANNED_DATA_REPORT_ID: u8 = 0x02;
/// The HID usage page of bar code scanners.
pub const USAGE_PAGE: u16 = 0x8C;

const LENGTH_AT: usize = 1;
const SYMBOLOGY_AT: usize = 2;
const DATA_AT: usize = 5;
const DATA_MAX: usize = 56;
const CONTINUED_AT: usize = 63;
/// A code that grows past this across continued reports is garbage: dropped.
const MAX_CODE_BYTES: usize = 8 * 1024;

/// Assembles codes from a HID POS scanner's input reports.
#[derive(Debug, Default, Clone)]
pub struct HidPosDecoder {
    pending: Vec<u8>,
    symbology: [u8; 3],
}

impl HidPosDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one input report as read from the device (report id first) and
    /// returns a code when the report completes one.
    pub fn feed(&mut self, report: &[u8]) -> Option<String> {
        if report.len() <= DATA_AT || report[0] != SCANNED_DATA_REPORT_ID {
            return None;
        }
        let data_end = report.len().min(DATA_AT + DATA_MAX);
        let available = &report[DATA_AT..data_end];
        let length = usize::from(report[LENGTH_AT]);
        let mut chunk = if length == 0 || length > available.len() {
            available
        } else {
            &available[..length]
        };
        while let [rest @ .., 0] = chunk {
            chunk = rest;
        }
        if self.pending.is_empty() {
            self.symbology
                .copy_from_slice(&report[SYMBOLOGY_AT..SYMBOLOGY_AT + 3]);
        }
        if self.pending.len() + chunk.len() > MAX_CODE_BYTES {
            tracing::warn!("HID POS code longer than {MAX_CODE_BYTES} bytes: dropped");
            self.pending.clear();
            return None;
        }
        self.pending.extend_from_slice(chunk);

        let continued = report
            .get(CONTINUED_AT)
            .is_some_and(|flags| flags & 0x01 != 0);
        if continued {
            return None;
        }
        let bytes = std::mem::take(&mut self.pending);
        let code = String::from_utf8_lossy(&bytes);
        let code = code.trim_end_matches(['\0', '\r', '\n', '\t']);
        if code.is_empty() {
            None
        } else {
            Some(code.to_owned())
        }
    }

    /// The AIM symbology identifier of the last code started (e.g. `]C0`),
    /// as raw bytes; zeros when the scanner does not send one.
    pub fn symbology(&self) -> [u8; 3] {
        self.symbology
    }

    /// True while a code split over several reports is half received.
    pub fn has_partial(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Forget a half-received code (the scanner went away or went quiet).
    pub fn drop_partial(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 64-byte scanned-data report as a scanner sends it.
    pub(crate) fn pos_report(data: &[u8], symbology: &[u8; 3], continued: bool) -> Vec<u8> {
        assert!(data.len() <= DATA_MAX);
        let mut r = vec![0u8; 64];
        r[0] = SCANNED_DATA_REPORT_ID;
        r[1] = u8::try_from(data.len()).unwrap();
        r[2..5].copy_from_slice(symbology);
        r[5..5 + data.len()].copy_from_slice(data);
        r[61] = b's';
        r[63] = u8::from(continued);
        r
    }

    #[test]
    fn single_report() {
        let mut d = HidPosDecoder::new();
        let code = d.feed(&pos_report(b"SB12345", b"]C0", false));
        assert_eq!(code.as_deref(), Some("SB12345"));
        assert_eq!(&d.symbology(), b"]C0");
        assert!(!d.has_partial());
    }

    #[test]
    fn two_reports_with_continued_flag() {
        // 60 bytes: 56 in the first report, 4 in the second (the layout of the
        // Access-IS example in their manuals).
        let text: Vec<u8> = (0..60u8).map(|i| b'A' + (i % 26)).collect();
        let mut d = HidPosDecoder::new();
        assert_eq!(d.feed(&pos_report(&text[..56], b"]Q0", true)), None);
        assert!(d.has_partial());
        let code = d.feed(&pos_report(&text[56..], b"]Q0", false));
        assert_eq!(code.as_deref(), Some(std::str::from_utf8(&text).unwrap()));
        assert!(!d.has_partial());
    }

    #[test]
    fn three_reports_keep_group_separators() {
        let part1 = [b'0', b'1', b'0', b'9', b'5', b'0', b'6', 0x1d, b'1', b'0'];
        let mut d = HidPosDecoder::new();
        assert_eq!(d.feed(&pos_report(&part1, b"]d2", true)), None);
        assert_eq!(d.feed(&pos_report(b"ABC", b"]d2", true)), None);
        let code = d.feed(&pos_report(&[0x1d, b'2', b'1', b'X'], b"]d2", false));
        assert_eq!(code.as_deref(), Some("0109506\u{1d}10ABC\u{1d}21X"));
        assert_eq!(&d.symbology(), b"]d2");
    }

    #[test]
    fn zero_length_byte_takes_data_up_to_the_padding() {
        let mut r = pos_report(b"CB777", b"]C0", false);
        r[1] = 0;
        assert_eq!(HidPosDecoder::new().feed(&r).as_deref(), Some("CB777"));
    }

    #[test]
    fn oversized_length_byte_is_clamped() {
        let mut r = pos_report(b"CB778", b"]C0", false);
        r[1] = 200;
        assert_eq!(HidPosDecoder::new().feed(&r).as_deref(), Some("CB778"));
    }

    #[test]
    fn trailing_nuls_and_line_ends_are_stripped() {
        let mut d = HidPosDecoder::new();
        let r = pos_report(b"SB1\r\n\0\0", b"]C0", false);
        assert_eq!(d.feed(&r).as_deref(), Some("SB1"));
    }

    #[test]
    fn short_report_without_flag_byte_is_a_whole_code() {
        // Report id, length, symbology, 4 data bytes: no continued flag.
        let r = [0x02, 4, b']', b'C', b'0', b'S', b'B', b'4', b'2'];
        assert_eq!(HidPosDecoder::new().feed(&r).as_deref(), Some("SB42"));
    }

    #[test]
    fn other_reports_and_garbage_are_ignored() {
        let mut d = HidPosDecoder::new();
        assert_eq!(d.feed(&[]), None);
        assert_eq!(d.feed(&[0x02]), None);
        assert_eq!(d.feed(&[0x02, 5, b']', b'C', b'0']), None);
        let mut other = pos_report(b"NOPE", b"]C0", false);
        other[0] = 0x04;
        assert_eq!(d.feed(&other), None);
        assert_eq!(d.feed(&pos_report(b"", b"]C0", false)), None);
        assert_eq!(d.feed(&pos_report(b"\0\0\0", b"]C0", false)), None);
        // The decoder still works afterwards.
        assert_eq!(
            d.feed(&pos_report(b"SB2", b"]C0", false)).as_deref(),
            Some("SB2")
        );
    }

    #[test]
    fn dropped_partial_does_not_leak_into_the_next_code() {
        let mut d = HidPosDecoder::new();
        assert_eq!(d.feed(&pos_report(b"HALF", b"]C0", true)), None);
        d.drop_partial();
        assert_eq!(
            d.feed(&pos_report(b"SB3", b"]C0", false)).as_deref(),
            Some("SB3")
        );
    }

    #[test]
    fn endless_continuation_is_dropped_not_grown() {
        let mut d = HidPosDecoder::new();
        let chunk = [b'Z'; 56];
        for _ in 0..(MAX_CODE_BYTES / 56 + 2) {
            assert_eq!(d.feed(&pos_report(&chunk, b"]C0", true)), None);
        }
        assert!(d.pending.len() <= MAX_CODE_BYTES);
    }

    #[test]
    fn non_utf8_bytes_do_not_break_decoding() {
        let mut d = HidPosDecoder::new();
        let code = d.feed(&pos_report(&[b'A', 0xff, b'B'], b"]C0", false));
        assert_eq!(code.as_deref(), Some("A\u{fffd}B"));
    }

    proptest! {
        #[test]
        fn random_reports_never_panic(
            reports in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..40)
        ) {
            let mut d = HidPosDecoder::new();
            for r in &reports {
                if let Some(code) = d.feed(r) {
                    prop_assert!(!code.is_empty());
                }
            }
        }

        #[test]
        fn scanned_data_reports_with_random_bodies_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..70)
        ) {
            let mut r = vec![SCANNED_DATA_REPORT_ID];
            r.extend(body);
            let _ = HidPosDecoder::new().feed(&r);
        }
    }
}
