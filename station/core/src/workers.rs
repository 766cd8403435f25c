//! Workers logging in at the station: through the server when it answers,
//! else from the verifier kept at their last online login here.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use time::OffsetDateTime;
use traitortrack_protocol::Role;

use crate::outbox::{KnownWorker, Outbox, OutboxError};
use crate::sync::{blocking, SendError, ServerLink};

/// The worker at the station.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Worker {
    pub username: String,
    pub role: Role,
    pub dispatch_area: Option<String>,
    /// False when logged in from the verifier, with the server unreachable.
    pub online: bool,
    /// The server session of an online login (for billing); never shown.
    #[serde(skip)]
    pub token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("The username or password is wrong.")]
    BadCredentials,
    #[error("The server cannot be reached, and {0} has not logged in at this station before. Log in once while the server is reachable.")]
    NeverHere(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Storage(#[from] OutboxError),
}

fn verifier(password: &str) -> Result<String, OutboxError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| OutboxError::Storage(format!("cannot keep the offline login: {e}")))
}

fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Logs a worker in at this station.
pub async fn login(
    link: &ServerLink,
    outbox: &std::sync::Arc<Outbox>,
    username: &str,
    password: &str,
) -> Result<Worker, LoginError> {
    let name = username.trim().to_lowercase();
    match link.login(&name, password).await {
        Ok(answer) => {
            let pw = password.to_string();
            let known = KnownWorker {
                username: answer.user.username.clone(),
                role: answer.user.role.as_str().to_string(),
                dispatch_area: answer.user.dispatch_area.clone(),
                verifier: String::new(),
            };
            let ob = std::sync::Arc::clone(outbox);
            blocking(move || {
                let known = KnownWorker {
                    verifier: verifier(&pw)?,
                    ..known
                };
                ob.remember_worker(&known, OffsetDateTime::now_utc())
            })
            .await?;
            Ok(Worker {
                username: answer.user.username,
                role: answer.user.role,
                dispatch_area: answer.user.dispatch_area,
                online: true,
                token: Some(answer.token),
            })
        }
        Err(SendError::Refused { status: 401, .. }) => Err(LoginError::BadCredentials),
        Err(SendError::Refused { message, .. }) => Err(LoginError::Refused(message)),
        Err(
            SendError::Unreachable(_)
            | SendError::Busy { .. }
            | SendError::TimedOut
            | SendError::BadAnswer(_),
        ) => {
            let ob = std::sync::Arc::clone(outbox);
            let lookup = name.clone();
            let Some(known) = blocking(move || ob.known_worker(&lookup)).await? else {
                return Err(LoginError::NeverHere(name));
            };
            let pw = password.to_string();
            let stored = known.verifier.clone();
            let ok = tokio::task::spawn_blocking(move || verify(&pw, &stored))
                .await
                .unwrap_or(false);
            if !ok {
                return Err(LoginError::BadCredentials);
            }
            Ok(Worker {
                role: Role::parse(&known.role).unwrap_or(Role::Dispatcher),
                username: known.username,
                dispatch_area: known.dispatch_area,
                online: false,
                token: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_are_argon2id_and_check_the_password() {
        let v = verifier("a long password").expect("verifier");
        assert!(v.starts_with("$argon2id$"));
        assert!(verify("a long password", &v));
        assert!(!verify("a long passwore", &v));
        assert!(!verify("a long password", "garbage"));
    }
}
