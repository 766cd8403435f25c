//! Password hashing (argon2id) and the password rules.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use rand::Rng;

use crate::error::{Error, Result};

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

/// argon2id with 19 MiB of memory, 2 passes, 1 lane (OWASP's first choice).
fn hasher() -> Argon2<'static> {
    match Params::new(19 * 1024, 2, 1, None) {
        Ok(params) => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        Err(_) => Argon2::default(),
    }
}

/// Checks the rules a new password must meet.
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
    if password.trim().eq_ignore_ascii_case(username.trim()) {
        return Err(Error::bad_input(
            "weak_password",
            "The password cannot be the same as the username.",
        ));
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
}
