//! Mail through the warehouse's SMTP server (lettre): plain-text messages
//! with files attached, such as the end-of-day summary.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::{Error, Result};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection, upgraded with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same machine or a lab.
    None,
}

impl Security {
    pub fn parse(s: &str) -> Option<Security> {
        match s.trim().to_ascii_lowercase().as_str() {
            "starttls" => Some(Security::StartTls),
            "tls" => Some(Security::Tls),
            "none" => Some(Security::None),
            _ => None,
        }
    }
}

/// The checked SMTP settings.
#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User name and password, when the server asks for a login.
    pub login: Option<(String, String)>,
    pub from: Mailbox,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password is a secret: never printed.
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.login.as_ref().map(|(u, _)| u))
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// A file attached to a message.
pub struct File {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Reads an address such as `TraitorTrack <tt@example.com>` or `a@b.in`.
pub fn mailbox(text: &str) -> Option<Mailbox> {
    text.trim().parse().ok()
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("mail: {what}: {e}"))
}

/// Sends one message to `to` (each gets the same message).
pub async fn send(
    smtp: &Smtp,
    to: &[Mailbox],
    subject: &str,
    text: &str,
    files: Vec<File>,
) -> Result<()> {
    if to.is_empty() {
        return Ok(());
    }
    let mut builder = Message::builder().from(smtp.from.clone()).subject(subject);
    for m in to {
        builder = builder.to(m.clone());
    }
    let mut body = MultiPart::mixed().singlepart(SinglePart::plain(text.to_string()));
    for f in files {
        let kind = ContentType::parse(f.content_type).map_err(|e| failed("a file's type", e))?;
        body = body.singlepart(Attachment::new(f.name).body(f.bytes, kind));
    }
    let message = builder
        .multipart(body)
        .map_err(|e| failed("the message", e))?;

    let tls = |host: &str| TlsParameters::new(host.to_string()).map_err(|e| failed("TLS", e));
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .timeout(Some(Duration::from_secs(30)));
    transport = match smtp.security {
        Security::StartTls => transport.tls(Tls::Required(tls(&smtp.host)?)),
        Security::Tls => transport.tls(Tls::Wrapper(tls(&smtp.host)?)),
        Security::None => transport.tls(Tls::None),
    };
    if let Some((user, password)) = &smtp.login {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map_err(|e| failed(&format!("sending to {}:{}", smtp.host, smtp.port), e))?;
    Ok(())
}
