//! Bag and bill codes: how a scanned string becomes a code, and which formats
//! make a code a parent bag or a child bag.

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The longest code accepted, after normalisation.
pub const MAX_CODE_LEN: usize = 64;

/// Why a scanned string is not a usable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeError {
    Empty,
    TooLong { len: usize },
    BadCharacters,
}

impl CodeError {
    /// The stable error code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::Empty => "empty_code",
            CodeError::TooLong { .. } => "code_too_long",
            CodeError::BadCharacters => "bad_code",
        }
    }

    /// A plain-words message for the worker.
    pub fn message(&self) -> String {
        match self {
            CodeError::Empty => "The code is empty. Scan again.".to_string(),
            CodeError::TooLong { len } => format!(
                "The code is too long ({len} characters, at most {MAX_CODE_LEN}). Scan again."
            ),
            CodeError::BadCharacters => {
                "The code has letters or signs a bag code cannot have. Scan again.".to_string()
            }
        }
    }
}

/// Characters removed anywhere in a code: zero-width and byte-order marks.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

/// Turns a scanned or typed string into a code: trims, strips control and
/// zero-width characters, upper-cases, and keeps only printable ASCII.
///
/// The result is at most [`MAX_CODE_LEN`] characters of `A-Z`, `0-9` and the
/// signs `- _ . /`; anything else is refused rather than silently changed.
pub fn normalize(raw: &str) -> Result<String, CodeError> {
    // Keep a bounded prefix only: a megabyte of junk must not cost a megabyte of work.
    const KEEP: usize = MAX_CODE_LEN * 4;
    let mut kept = String::with_capacity(raw.len().min(KEEP));
    let mut visible = 0usize;
    for c in raw.chars().filter(|&c| !c.is_control() && !is_invisible(c)) {
        visible += 1;
        if visible <= KEEP {
            kept.push(c);
        }
    }
    if visible > KEEP {
        return Err(CodeError::TooLong { len: visible });
    }
    let code = kept.trim().to_uppercase();
    let len = code.chars().count();
    if len == 0 {
        return Err(CodeError::Empty);
    }
    if len > MAX_CODE_LEN {
        return Err(CodeError::TooLong { len });
    }
    if !code
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"-_./".contains(&b))
    {
        return Err(CodeError::BadCharacters);
    }
    Ok(code)
}

/// One parent bag format, as configured: a pattern and the bag's capacity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ParentFormatSpec {
    /// A short name shown to people ("SB", "M444").
    pub name: String,
    /// A regular expression a whole code must match (anchored for you).
    pub pattern: String,
    /// How many child bags a parent of this format holds.
    pub capacity: u32,
}

/// The configured code formats, as sent to stations. A missing part keeps its default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FormatSpec {
    pub parents: Vec<ParentFormatSpec>,
    /// A regular expression a whole child code must match (anchored for you).
    pub child_pattern: String,
}

impl Default for FormatSpec {
    fn default() -> Self {
        FormatSpec {
            parents: vec![
                ParentFormatSpec {
                    name: "SB".into(),
                    pattern: "SB[0-9]{5}".into(),
                    capacity: 30,
                },
                ParentFormatSpec {
                    name: "M444".into(),
                    pattern: "M444-[0-9]{5}".into(),
                    capacity: 15,
                },
            ],
            child_pattern: "[A-Z0-9]{4,20}".into(),
        }
    }
}

/// The largest capacity a parent format may have.
pub const MAX_PARENT_CAPACITY: u32 = 1000;

/// Compiled formats: tells what kind of bag a normalised code is.
#[derive(Debug, Clone)]
pub struct Formats {
    parents: Vec<(ParentFormatSpec, Regex)>,
    child: Regex,
    spec: FormatSpec,
}

/// What a normalised code is, by format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// A parent bag code, with the capacity its format gives.
    Parent {
        capacity: u32,
    },
    Child,
    /// Matches no configured format.
    Unknown,
}

fn anchored(pattern: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("the pattern {pattern:?} is not a valid regular expression: {e}"))
}

impl Formats {
    /// Compiles and checks a format spec; the error is a plain sentence.
    pub fn new(spec: FormatSpec) -> Result<Formats, String> {
        if spec.parents.is_empty() {
            return Err("at least one parent format is needed".into());
        }
        let mut parents = Vec::with_capacity(spec.parents.len());
        for p in &spec.parents {
            if p.name.trim().is_empty() {
                return Err("every parent format needs a name".into());
            }
            if p.capacity == 0 || p.capacity > MAX_PARENT_CAPACITY {
                return Err(format!(
                    "parent format {:?}: capacity must be between 1 and {MAX_PARENT_CAPACITY}, not {}",
                    p.name, p.capacity
                ));
            }
            parents.push((p.clone(), anchored(&p.pattern)?));
        }
        let child = anchored(&spec.child_pattern)?;
        Ok(Formats {
            parents,
            child,
            spec,
        })
    }

    pub fn spec(&self) -> &FormatSpec {
        &self.spec
    }

    /// The kind of a normalised code. Parent formats win over the child format,
    /// so a code is never both.
    pub fn classify(&self, code: &str) -> CodeKind {
        for (spec, re) in &self.parents {
            if re.is_match(code) {
                return CodeKind::Parent {
                    capacity: spec.capacity,
                };
            }
        }
        if self.child.is_match(code) {
            CodeKind::Child
        } else {
            CodeKind::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_uppercases_and_strips_invisible_characters() {
        assert_eq!(normalize("  sb00001 \r\n").as_deref(), Ok("SB00001"));
        assert_eq!(
            normalize("SB\u{200B}000\u{FEFF}01").as_deref(),
            Ok("SB00001")
        );
        assert_eq!(normalize("\u{1d}ab12\u{0}").as_deref(), Ok("AB12"));
    }

    #[test]
    fn refuses_empty_long_and_strange_codes() {
        assert_eq!(normalize(" \t\u{200B}"), Err(CodeError::Empty));
        assert!(matches!(
            normalize(&"A".repeat(65)),
            Err(CodeError::TooLong { len: 65 })
        ));
        assert!(matches!(
            normalize(&"A".repeat(10_000)),
            Err(CodeError::TooLong { .. })
        ));
        assert_eq!(
            normalize("SB1'; DROP TABLE bags;--"),
            Err(CodeError::BadCharacters)
        );
        assert_eq!(normalize("<script>"), Err(CodeError::BadCharacters));
        assert_eq!(normalize("SB０0001"), Err(CodeError::BadCharacters));
        assert_eq!(normalize(&"A".repeat(64)).map(|c| c.len()), Ok(64));
    }

    #[test]
    fn default_formats_tell_parents_from_children() {
        let f = Formats::new(FormatSpec::default()).expect("default formats compile");
        assert_eq!(f.classify("SB12345"), CodeKind::Parent { capacity: 30 });
        assert_eq!(f.classify("M444-12345"), CodeKind::Parent { capacity: 15 });
        assert_eq!(f.classify("C0001"), CodeKind::Child);
        assert_eq!(f.classify("SB1234"), CodeKind::Child);
        assert_eq!(f.classify("ABC"), CodeKind::Unknown);
        assert_eq!(f.classify("M444-1234"), CodeKind::Unknown);
    }

    #[test]
    fn bad_format_specs_are_refused_in_plain_words() {
        let mut spec = FormatSpec::default();
        spec.parents[0].capacity = 0;
        assert!(Formats::new(spec).unwrap_err().contains("capacity"));
        let spec = FormatSpec {
            child_pattern: "([".into(),
            ..FormatSpec::default()
        };
        assert!(Formats::new(spec)
            .unwrap_err()
            .contains("not a valid regular expression"));
    }

    proptest! {
        #[test]
        fn normalize_never_panics_and_is_idempotent(s in "\\PC{0,80}") {
            if let Ok(code) = normalize(&s) {
                prop_assert!(code.len() <= MAX_CODE_LEN);
                prop_assert_eq!(normalize(&code), Ok(code.clone()));
            }
        }

        #[test]
        fn any_ascii_code_survives_noise(code in "[A-Z0-9]{4,20}", pad in "[ \\t\\r\\n]{0,3}") {
            let noisy = format!("{pad}{}\u{200B}{pad}", code.to_lowercase());
            prop_assert_eq!(normalize(&noisy), Ok(code));
        }
    }
}
