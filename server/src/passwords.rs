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
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// The most threads that hash and check passwords.
const MAX_HASHERS: usize = 4;

/// argon2's working memory, kept by each password thread and used again by
/// every hash it makes there: 19 MiB, allocated at its first hash.
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    /// Runs `hash` with `count` blocks: this memory when they fit in our
    /// parameters' size, else (a stored hash with more memory) a one-off.
    fn with<T>(&mut self, count: usize, hash: impl FnOnce(&mut [Block]) -> T) -> T {
        if count > hasher().params().block_count() {
            return hash(&mut vec![Block::default(); count]);
        }
        if self.0.len() < count {
            self.0 = vec![Block::default(); count];
        }
        hash(&mut self.0[..count])
    }
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// The threads that hash and check passwords, fed by a channel: one per core,
/// at most [`MAX_HASHERS`]. Each keeps its own argon2 memory ([`Memory`]), so
/// the server holds at most that many 19 MiB blocks, however many logins
/// come at once: a burst waits its turn in the channel. (Hashing on tokio's
/// blocking pool, with a fresh block each time, left hundreds of MB
/// resident after a burst of logins: glibc keeps freed blocks in the arena
/// of each thread that used one.)
struct Hashers {
    jobs: mpsc::Sender<Job>,
}

fn hashers() -> Result<&'static Hashers> {
    static HASHERS: OnceLock<std::result::Result<Hashers, String>> = OnceLock::new();
    HASHERS
        .get_or_init(|| {
            let (jobs, queue) = mpsc::channel::<Job>();
            let queue = Arc::new(Mutex::new(queue));
            let threads = std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, MAX_HASHERS);
            for i in 0..threads {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new()
                    .name(format!("password-{i}"))
                    .spawn(move || {
                        let mut memory = Memory::default();
                        loop {
                            // The lock is held only while waiting for the next job.
                            let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                            let Ok(job) = job else { break };
                            // A panic ends that job (its caller hears of it), not the thread.
                            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                        }
                    })
                    .map_err(|e| format!("cannot start the password threads: {e}"))?;
            }
            Ok(Hashers { jobs })
        })
        .as_ref()
        .map_err(|e| Error::Internal(e.clone()))
}

/// Runs `work` on the password threads and waits for its answer without
/// holding up the async runtime.
async fn on_hashers<T: Send + 'static>(
    work: impl FnOnce(&mut Memory) -> T + Send + 'static,
) -> Result<T> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |memory| {
        let _ = answer.send(work(memory));
    });
    hashers()?
        .jobs
        .send(job)
        .map_err(|_| Error::Internal("the password threads stopped".into()))?;
    answered
        .await
        .map_err(|_| Error::Internal("password hashing stopped".into()))
}

/// [`hash`], on the password threads.
pub async fn hash_off_runtime(password: &str) -> Result<String> {
    let password = password.to_string();
    on_hashers(move |memory| hash_in(memory, &password)).await?
}

/// [`verify`] against `stored`, on the password threads; with no stored hash
/// (an unknown user), against the [`decoy_hash`], so that costs the same time.
pub async fn verify_off_runtime(password: &str, stored: Option<String>) -> Result<bool> {
    let password = password.to_string();
    on_hashers(move |memory| {
        let stored = match &stored {
            Some(stored) => stored.as_str(),
            None => decoy_hash_in(memory),
        };
        verify_in(memory, &password, stored)
    })
    .await
}

/// Hashes a password. Slow on purpose: call it off the async runtime
/// ([`hash_off_runtime`]).
pub fn hash(password: &str) -> Result<String> {
    hash_in(&mut Memory::default(), password)
}

fn hash_in(memory: &mut Memory, password: &str) -> Result<String> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Internal(format!("password hashing failed: {e}"));
    let argon2 = hasher();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| failed(&e))?;
    let output_len = argon2
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = memory
        .with(argon2.params().block_count(), |blocks| {
            Output::init_with(output_len, |out| {
                argon2
                    .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)
                    .map_err(Into::into)
            })
        })
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the stored hash. Slow on purpose: call it
/// off the async runtime ([`verify_off_runtime`]).
pub fn verify(password: &str, stored: &str) -> bool {
    verify_in(&mut Memory::default(), password, stored)
}

/// What [`PasswordVerifier::verify_password`] does, with this memory: the
/// algorithm, version and parameters come from the stored hash.
fn verify_in(memory: &mut Memory, password: &str, stored: &str) -> bool {
    if password.len() > MAX_LEN * 4 {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = memory.with(argon2.params().block_count(), |blocks| {
        Output::init_with(expected.len(), |out| {
            argon2
                .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)
                .map_err(Into::into)
        })
    });
    // `Output` compares in constant time.
    computed.is_ok_and(|computed| computed == expected)
}

/// A hash of a random password: verified against when the user is unknown,
/// so a wrong username costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    decoy_hash_in(&mut Memory::default())
}

fn decoy_hash_in(memory: &mut Memory) -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_in(memory, &generate()).unwrap_or_default())
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

    /// The hashes made with reused memory are argon2's own: the crate's
    /// verifier takes ours, ours takes the crate's, also with other
    /// parameters (an older or a larger hash) and with memory a bigger
    /// hash used before.
    #[test]
    fn reused_memory_hashes_as_argon2_does() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut memory = Memory::default();
        let ours = hash_in(&mut memory, "correct horse battery").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(hasher()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(hasher().verify_password(b"wrong horse", &parsed).is_err());
        for (algorithm, m, t, p) in [
            (Algorithm::Argon2id, 19 * 1024, 2, 1),
            (Algorithm::Argon2id, 8 * 1024, 1, 1),
            (Algorithm::Argon2i, 4 * 1024, 3, 2),
            (Algorithm::Argon2id, 24 * 1024, 1, 1),
        ] {
            let params = Params::new(m, t, p, None).expect("params");
            let theirs = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"plum-orbit-97", &SaltString::generate(&mut OsRng))
                .expect("hash")
                .to_string();
            assert!(verify_in(&mut memory, "plum-orbit-97", &theirs), "{theirs}");
            assert!(
                !verify_in(&mut memory, "plum-orbit-98", &theirs),
                "{theirs}"
            );
        }
        // The memory the runs above left behind does not change a hash.
        assert!(verify_in(&mut memory, "correct horse battery", &ours));
        let tampered = ours.replace("m=19456", "m=19457");
        assert!(!verify_in(&mut memory, "correct horse battery", &tampered));
        assert!(!verify_in(
            &mut memory,
            "x",
            "$argon2id$v=19$m=19456,t=2,p=1$bad"
        ));
    }

    /// More hashes at once than there are password threads: each waits its
    /// turn and comes out right.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_hashes_queues_for_the_password_threads() {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..12 {
            tasks.spawn(async move {
                let password = format!("burst-password-{i}");
                let stored = hash_off_runtime(&password).await.expect("hash");
                let right = verify_off_runtime(&password, Some(stored.clone())).await;
                let wrong = verify_off_runtime("not it at all", Some(stored)).await;
                (right.expect("verify"), wrong.expect("verify"))
            });
        }
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.expect("task"), (true, false));
        }
        assert!(!verify_off_runtime("anything-at-all", None)
            .await
            .expect("the decoy"));
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
