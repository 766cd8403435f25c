//! Property tests of the code rules on hostile input: whatever a scanner or a
//! person sends (control and zero-width characters, other scripts, megabytes
//! of junk), normalising and classifying never panic, a refusal always has a
//! stable code and a plain message, and an accepted code is short, in the
//! allowed alphabet, and normalises to itself.

use proptest::prelude::*;
use traitortrack_protocol::codes::{MAX_CODE_LEN, MAX_PARENT_CAPACITY};
use traitortrack_protocol::{
    normalize, CodeError, CodeKind, FormatSpec, Formats, ParentFormatSpec,
};

/// Characters a scanner or a paste can put in a code field besides letters and digits.
const NOISE: &[char] = &[
    '\0', '\t', '\n', '\r', '\u{1b}', '\u{1d}', '\u{7f}', '\u{85}', '\u{a0}', '\u{ad}', '\u{200b}',
    '\u{200c}', '\u{200d}', '\u{200e}', '\u{2028}', '\u{2060}', '\u{202e}', '\u{feff}', '\u{fffd}',
    '\u{ff10}', '\u{0130}', '\u{0131}', '\u{00df}', '\u{017f}', '\u{212a}', '\u{fb00}', 'क', '्',
    'ष', '०', '-', '_', '.', '/', ' ', '\'', '"', ';', '<', '>', '%', '\\', '😀',
];

fn noise_char() -> impl Strategy<Value = char> {
    prop::sample::select(NOISE)
}

/// Strings shaped like what reaches `normalize`: any Unicode, code-like
/// strings wrapped in noise, and very long ones.
fn scanned() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => short_scanned(),
        // Huge: a short piece repeated up to 100,000 times (megabytes).
        1 => ("(.|[\\x00-\\x1f\u{200b}\u{feff}]){1,4}", 0usize..100_000)
            .prop_map(|(piece, n)| piece.repeat(n)),
    ]
}

/// Like [`scanned`], at most a few hundred characters.
fn short_scanned() -> impl Strategy<Value = String> {
    prop_oneof![
        // Anything at all, including unassigned and private-use code points.
        any::<String>(),
        ".{0,100}",
        // Plausible codes, lower or upper case, with noise around and inside.
        (
            "[a-zA-Z0-9]{0,70}",
            prop::collection::vec(noise_char(), 0..6),
            prop::collection::vec(noise_char(), 0..6),
            prop::collection::vec((0usize..80, noise_char()), 0..4),
        )
            .prop_map(|(code, before, after, inside)| {
                let mut chars: Vec<char> = code.chars().collect();
                for (at, c) in inside {
                    chars.insert(at.min(chars.len()), c);
                }
                before
                    .into_iter()
                    .chain(chars)
                    .chain(after)
                    .collect::<String>()
            }),
        // Only noise.
        prop::collection::vec(noise_char(), 0..300).prop_map(String::from_iter),
        // Long runs right around the limits.
        (
            0usize..(MAX_CODE_LEN * 5),
            "[A-Za-z0-9]",
            "[\u{200b} \t]{0,3}"
        )
            .prop_map(|(n, c, pad)| format!("{pad}{}{pad}", c.repeat(n))),
    ]
}

fn is_snake_case(code: &str) -> bool {
    code.starts_with(|c: char| c.is_ascii_lowercase())
        && !code.ends_with('_')
        && !code.contains("__")
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A refusal must carry a stable snake_case code and a sentence a worker can read.
fn check_refusal(e: &CodeError) -> Result<(), TestCaseError> {
    prop_assert!(is_snake_case(e.code()), "code {:?}", e.code());
    let message = e.message();
    prop_assert!(message.trim().len() > 10, "message {message:?}");
    prop_assert!(
        !message.chars().any(char::is_control),
        "control characters in {message:?}"
    );
    prop_assert!(
        !message.contains('{') && !message.contains("Error"),
        "not plain words: {message:?}"
    );
    Ok(())
}

fn check_accepted(code: &str) -> Result<(), TestCaseError> {
    prop_assert!(!code.is_empty());
    prop_assert!(code.len() <= MAX_CODE_LEN, "{} bytes", code.len());
    prop_assert!(
        code.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_./".contains(&b)),
        "outside the allowed set: {code:?}"
    );
    prop_assert_eq!(normalize(code), Ok(code.to_string()), "not idempotent");
    Ok(())
}

fn default_formats() -> Formats {
    Formats::new(FormatSpec::default()).expect("the default formats compile")
}

/// A format spec with arbitrary patterns and capacities, valid or not.
fn format_spec() -> impl Strategy<Value = FormatSpec> {
    let pattern = prop_oneof![
        "[A-Z0-9\\[\\]{}()|.*+?\\-^$\\\\]{0,24}",
        ".{0,24}",
        Just("SB[0-9]{5}".to_string()),
        Just("[A-Z]{2}[0-9]{3,6}".to_string()),
        Just("(a|aa)*b".to_string()),
    ];
    let parent = (".{0,8}", pattern.clone(), 0u32..=(MAX_PARENT_CAPACITY + 2)).prop_map(
        |(name, pattern, capacity)| ParentFormatSpec {
            name,
            pattern,
            capacity,
        },
    );
    (prop::collection::vec(parent, 0..4), pattern).prop_map(|(parents, child_pattern)| FormatSpec {
        parents,
        child_pattern,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn normalize_never_panics_and_answers_cleanly(raw in scanned()) {
        match normalize(&raw) {
            Ok(code) => check_accepted(&code)?,
            Err(e) => check_refusal(&e)?,
        }
    }

    #[test]
    fn normalize_is_idempotent_and_ignores_case_and_invisible_characters(raw in scanned()) {
        if let Ok(code) = normalize(&raw) {
            prop_assert_eq!(normalize(&code), Ok(code.clone()));
            prop_assert_eq!(normalize(&code.to_lowercase()), Ok(code.clone()));
            let spaced = format!("\u{feff} {}\u{200b}\r\n", code.to_lowercase());
            prop_assert_eq!(normalize(&spaced), Ok(code));
        }
    }

    #[test]
    fn classify_never_panics_on_anything(raw in scanned()) {
        let formats = default_formats();
        // Raw, unnormalised input too: a caller that forgets to normalise must not crash.
        let _ = formats.classify(&raw);
        if let Ok(code) = normalize(&raw) {
            match formats.classify(&code) {
                CodeKind::Parent { capacity } => prop_assert!(capacity == 30 || capacity == 15),
                CodeKind::Child | CodeKind::Unknown => {}
            }
        }
    }

    #[test]
    fn scanned_parent_codes_are_parents_whatever_the_noise(
        digits in "[0-9]{5}",
        m444 in any::<bool>(),
        lower in any::<bool>(),
        before in prop::collection::vec(prop::sample::select(&['\u{200b}', '\u{feff}', ' ', '\t', '\r', '\n', '\u{1d}'][..]), 0..4),
    ) {
        let code = if m444 { format!("M444-{digits}") } else { format!("SB{digits}") };
        let typed = if lower { code.to_lowercase() } else { code.clone() };
        let noisy: String = before.iter().copied().chain(typed.chars()).chain(before.iter().copied()).collect();
        let normalised = normalize(&noisy);
        prop_assert_eq!(normalised.as_deref(), Ok(code.as_str()));
        let capacity = if m444 { 15 } else { 30 };
        prop_assert_eq!(default_formats().classify(&code), CodeKind::Parent { capacity });
    }

}

proptest! {
    // Regular expressions are slow to build and run in a debug build: fewer cases, shorter input.
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_format_spec_compiles_or_is_refused_in_plain_words(spec in format_spec(), raw in short_scanned()) {
        let capacities: Vec<u32> = spec.parents.iter().map(|p| p.capacity).collect();
        match Formats::new(spec) {
            Ok(formats) => {
                for code in [raw.as_str(), normalize(&raw).as_deref().unwrap_or("")] {
                    if let CodeKind::Parent { capacity } = formats.classify(code) {
                        prop_assert!((1..=MAX_PARENT_CAPACITY).contains(&capacity));
                        prop_assert!(capacities.contains(&capacity));
                    }
                }
            }
            Err(message) => prop_assert!(message.trim().len() > 10, "{message:?}"),
        }
    }

    #[test]
    fn format_spec_json_never_panics(json in prop_oneof![
        any::<String>(),
        "\\{\"parents\":\\[.{0,60}\\],\"child_pattern\":\".{0,20}\"\\}",
        "\\{\"child_pattern\":\"[A-Z0-9\\[\\]{}()|*+?]{0,20}\"\\}",
    ]) {
        if let Ok(spec) = serde_json::from_str::<FormatSpec>(&json) {
            let _ = Formats::new(spec);
        }
    }
}
