//! Password hashing (argon2id) and the rules a new password must meet.
//!
//! Hashes are argon2id (version 0x13) with m = 19456 KiB (19 MiB) of memory,
//! t = 2 passes and p = 1 lane, OWASP's first choice; the stored string is the
//! PHC form `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, so a later change of
//! parameters still verifies old hashes.
//!
//! A new password is refused with the code `weak_password` when it is shorter
//! than [`MIN_LEN`] or longer than [`MAX_LEN`] characters, when its lower-case
//! form is on the built-in list of commonly breached passwords
//! (`common_passwords.txt`: entries of 10+ characters from public breach
//! corpora), when it is one character repeated, when it is a run of
//! consecutive digits or letters (`1234567890`, `zyxwvutsrq`), or when it
//! contains the username (any case; usernames of 4+ characters, an equal one always).

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use rand::Rng;

use crate::error::{Error, Result};

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

/// A username this long or longer may not appear anywhere in the password.
const USERNAME_IN_PASSWORD_MIN: usize = 4;

/// argon2id with 19 MiB of memory, 2 passes, 1 lane (OWASP's first choice).
fn hasher() -> Argon2<'static> {
    match Params::new(19 * 1024, 2, 1, None) {
        Ok(params) => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        Err(_) => Argon2::default(),
    }
}

/// The built-in list of common passwords, lower-case, one per line.
fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// True when every character is the same one.
fn is_one_character_repeated(password: &str) -> bool {
    let mut chars = password.chars();
    match chars.next() {
        Some(first) => chars.all(|c| c == first),
        None => false,
    }
}

/// True when the whole password is a run of consecutive digits (going round
/// from 9 to 0, so `1234567890` and `0987654321` count) or of consecutive
/// letters of the alphabet, up or down, in any case.
fn is_consecutive_run(password: &str) -> bool {
    let lower = password.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    if bytes.len() < 2 {
        return false;
    }
    let step = |a: u8, b: u8| -> Option<i8> {
        if a.is_ascii_digit() && b.is_ascii_digit() {
            match (10 + b - a) % 10 {
                1 => Some(1),
                9 => Some(-1),
                _ => None,
            }
        } else if a.is_ascii_lowercase() && b.is_ascii_lowercase() {
            match i16::from(b) - i16::from(a) {
                1 => Some(1),
                -1 => Some(-1),
                _ => None,
            }
        } else {
            None
        }
    };
    let Some(direction) = step(bytes[0], bytes[1]) else {
        return false;
    };
    bytes
        .windows(2)
        .all(|w| step(w[0], w[1]) == Some(direction))
}

fn too_common(why: &str) -> Error {
    Error::bad_input(
        "weak_password",
        format!("This password is too common: {why} Choose one that is harder to guess."),
    )
}

/// Checks the rules a new password must meet (see the module documentation).
pub fn check_new(password: &str, username: &str) -> Result<()> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(Error::bad_input(
            "weak_password",
            format!("The password is too short: use at least {MIN_LEN} characters."),
        ));
    }
    if len > MAX_LEN {
        return Err(Error::bad_input(
            "weak_password",
            format!("The password is too long: use at most {MAX_LEN} characters."),
        ));
    }
    let username = username.trim();
    if password.trim().eq_ignore_ascii_case(username) {
        return Err(Error::bad_input(
            "weak_password",
            "The password cannot be the same as the username.",
        ));
    }
    let lower = password.to_lowercase();
    if username.chars().count() >= USERNAME_IN_PASSWORD_MIN
        && lower.contains(&username.to_lowercase())
    {
        return Err(Error::bad_input(
            "weak_password",
            "The password cannot contain the username.",
        ));
    }
    if common_passwords().contains(lower.as_str()) {
        return Err(too_common(
            "it is on the list of passwords most often leaked and guessed.",
        ));
    }
    if is_one_character_repeated(password) {
        return Err(too_common("it is one character repeated."));
    }
    if is_consecutive_run(password) {
        return Err(too_common("it is a run of consecutive digits or letters."));
    }
    Ok(())
}

/// Hashes a password. Slow on purpose: call it off the async runtime.
pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// True when `password` matches the stored hash. Slow on purpose.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_LEN * 4 {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password: verified against when the user is unknown,
/// so a wrong username costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&generate()).unwrap_or_default())
}

/// A random password people can type: 16 characters without look-alikes.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = OsRng;
    (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterx", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn rules_refuse_short_and_username_passwords() {
        assert!(check_new("short", "amit").is_err());
        assert!(check_new("amitkumar1", "AmitKumar1").is_err());
        assert!(check_new("a good long passphrase", "amit").is_ok());
        assert_eq!(generate().len(), 16);
    }

    /// The error code and message of a refused password.
    fn refusal(password: &str, username: &str) -> (&'static str, String) {
        match check_new(password, username) {
            Err(Error::Refused { code, message, .. }) => (code, message),
            other => panic!("{password:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn length_limits_stay_10_to_256_characters() {
        assert_eq!(refusal("tidy-oak9", "amit").0, "weak_password");
        assert!(check_new("tidy-oak-9", "amit").is_ok());
        // Characters, not bytes: ten Devanagari letters are long enough.
        assert!(check_new("कखगघङचछजझञ", "amit").is_ok());
        assert!(check_new(&"tidy-oak-9".repeat(25), "amit").is_ok());
        let (code, message) = refusal(&"tidy-oak-9".repeat(26), "amit");
        assert_eq!(code, "weak_password");
        assert!(message.contains("too long"), "{message}");
    }

    #[test]
    fn the_common_list_is_lower_case_and_long_enough() {
        let list = common_passwords();
        assert!(list.len() >= 400, "only {} entries", list.len());
        for entry in list {
            assert_eq!(*entry, entry.to_lowercase(), "{entry} is not lower-case");
            assert!(
                entry.chars().count() >= MIN_LEN,
                "{entry} is too short to matter"
            );
        }
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for common in [
            "password123",
            "Password123",
            "QWERTYUIOP",
            "iloveyou123",
            "1q2w3e4r5t",
            "qwerty12345",
            "abcd123456",
            "password1234",
            "welcome123",
            "admin12345",
            "changeme123",
            "Basketball",
        ] {
            let (code, message) = refusal(common, "amit");
            assert_eq!(code, "weak_password", "{common}");
            assert!(
                message.starts_with("This password is too common:"),
                "{common}: {message}"
            );
        }
        // Only the whole password counts, not a part of it.
        assert!(check_new("password123 and then some", "amit").is_ok());
    }

    #[test]
    fn one_character_repeated_is_refused() {
        for repeated in ["zzzzzzzzzzzz", "!!!!!!!!!!", "7777777777777", "आआआआआआआआआआ"]
        {
            let (code, message) = refusal(repeated, "amit");
            assert_eq!(code, "weak_password");
            assert!(message.contains("one character repeated"), "{message}");
        }
        assert!(!is_one_character_repeated("zzzzzzzzzy"));
    }

    #[test]
    fn runs_of_consecutive_digits_or_letters_are_refused() {
        for run in [
            "12345678901234",
            "0987654321098",
            "abcdefghijk",
            "ABCDEFGHIJKLM",
            "zyxwvutsrqp",
            "3456789012",
        ] {
            let (code, message) = refusal(run, "amit");
            assert_eq!(code, "weak_password", "{run}");
            assert!(message.contains("consecutive"), "{run}: {message}");
        }
        assert!(!is_consecutive_run("abcdefghiz"));
        assert!(!is_consecutive_run("123456789a"));
        assert!(!is_consecutive_run("13579135791"));
        assert!(!is_consecutive_run("yzabcdefgh"), "letters do not go round");
        assert!(check_new("abcdefghi-1", "amit").is_ok());
    }

    #[test]
    fn a_password_containing_the_username_is_refused() {
        let (code, message) = refusal("my-RAVI-password-9", "ravi");
        assert_eq!(code, "weak_password");
        assert!(message.contains("username"), "{message}");
        assert!(check_new("priyasharma-2024!", "PriyaSharma").is_err());
        // Short usernames are too likely to appear by chance; only equality counts.
        assert!(check_new("tidy-bob-oak-9", "bob").is_ok());
        assert!(check_new("bob", "bob").is_err());
        assert!(check_new("bobbobbob1", "bobbobbob1").is_err());
    }
}
