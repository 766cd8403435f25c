//! Server settings: defaults, then a TOML file, then `TRAITORTRACK_*` variables,
//! then command-line flags; checked once at start with plain-words errors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use time::UtcOffset;
use traitortrack_protocol::{FormatSpec, Formats};

/// The default database when none is given: SQLite in `./traitortrack-data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://traitortrack-data/traitortrack.db";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// `postgres://…` or `sqlite://…`. A secret: never printed whole.
    pub database_url: String,
    /// Largest number of database connections this process opens.
    pub max_connections: u32,
    /// Bag code formats and parent capacities.
    pub formats: FormatSpec,
    /// Weight of one child bag, for bill weights.
    pub kg_per_child: f64,
    /// How long after a scan its worker may still undo it, in seconds.
    pub undo_window_secs: i64,
    /// How long a console/API login lasts at most, in hours.
    pub session_hours: i64,
    /// A console/API login ends after this many minutes without a request.
    pub session_idle_minutes: i64,
    /// How long a login at a station lasts, in hours.
    pub station_session_hours: i64,
    /// The warehouse's offset from UTC ("+05:30"), for "today" in totals.
    pub utc_offset: String,
    /// Admins must use two-step login (TOTP). Turn off only in a lab.
    pub require_admin_totp: bool,
    /// Wrong passwords in a row that block an account's logins.
    pub lockout_after: u32,
    /// How long those logins stay blocked, in minutes.
    pub lockout_minutes: i64,
    /// Login attempts allowed per minute from one address.
    pub login_attempts_per_ip: u32,
    /// Login attempts allowed per minute for one username.
    pub login_attempts_per_user: u32,
    /// Most active dispatchers in one dispatch area.
    pub max_dispatchers_per_area: u32,
    /// PEM certificate chain for built-in HTTPS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for built-in HTTPS (with `tls_cert`).
    pub tls_key: Option<PathBuf>,
    /// The SMTP server that mails the end-of-day summary; none, no mail.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    /// `starttls` (port 587), `tls` (port 465) or `none` (a local relay).
    pub smtp_security: String,
    pub smtp_username: Option<String>,
    /// A secret: never printed.
    pub smtp_password: Option<String>,
    /// The sender: `TraitorTrack <traitortrack@example.com>`.
    pub smtp_from: String,
    /// When the day's summary is mailed, in the warehouse's time (`HH:MM`).
    pub summary_mail_at: String,
    /// The largest file an import takes, in bytes.
    pub import_max_bytes: u64,
    /// Where uploads wait and imports' result files are kept.
    pub import_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            database_url: DEFAULT_DATABASE_URL.into(),
            max_connections: 32,
            formats: FormatSpec::default(),
            kg_per_child: 1.0,
            undo_window_secs: 3600,
            session_hours: 8,
            session_idle_minutes: 30,
            station_session_hours: 12,
            utc_offset: "+00:00".into(),
            require_admin_totp: true,
            lockout_after: 5,
            lockout_minutes: 15,
            login_attempts_per_ip: 60,
            login_attempts_per_user: 10,
            max_dispatchers_per_area: 10,
            tls_cert: None,
            tls_key: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_from: "TraitorTrack <traitortrack@localhost>".into(),
            summary_mail_at: "20:00".into(),
            import_max_bytes: 64 * 1024 * 1024,
            import_dir: PathBuf::from("traitortrack-data/imports"),
        }
    }
}

/// A setting that cannot be used, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The checked settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub max_connections: u32,
    pub formats: Formats,
    pub kg_per_child: f64,
    pub undo_window: time::Duration,
    pub session_ttl: time::Duration,
    pub session_idle: time::Duration,
    pub station_session_ttl: time::Duration,
    pub utc_offset: UtcOffset,
    pub require_admin_totp: bool,
    pub lockout_after: u32,
    pub lockout: time::Duration,
    pub login_attempts_per_ip: u32,
    pub login_attempts_per_user: u32,
    pub max_dispatchers_per_area: u32,
    pub tls: Option<Tls>,
    /// Where mail goes out; `None` when no SMTP server is set.
    pub smtp: Option<crate::mail::Smtp>,
    /// When the day's summary is mailed, in the warehouse's time.
    pub summary_mail_at: time::Time,
    pub import_max_bytes: u64,
    pub import_dir: PathBuf,
}

/// Where built-in HTTPS finds its certificate and key.
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad(format!("cannot read the file {}: {e}", path.display())))?;
                toml::from_str(&text)
                    .map_err(|e| bad(format!("the file {} is not valid: {e}", path.display())))?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
            v.trim()
                .parse()
                .map_err(|_| bad(format!("{key} must be a number, not {v:?}")))
        }
        fn yes_no(key: &str, v: &str) -> Result<bool, ConfigError> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(bad(format!("{key} must be true or false, not {v:?}"))),
            }
        }
        for (key, value) in env {
            let Some(name) = key.strip_prefix("TRAITORTRACK_") else {
                continue;
            };
            match name {
                "LISTEN" => self.listen = value.clone(),
                "DATABASE_URL" => self.database_url = value.clone(),
                "DATABASE_URL_FILE" => {
                    self.database_url = std::fs::read_to_string(value)
                        .map_err(|e| bad(format!("cannot read {key} ({value}): {e}")))?
                        .trim()
                        .to_string()
                }
                "MAX_CONNECTIONS" => self.max_connections = num(key, value)?,
                "KG_PER_CHILD" => self.kg_per_child = num(key, value)?,
                "UNDO_WINDOW_SECS" => self.undo_window_secs = num(key, value)?,
                "SESSION_HOURS" => self.session_hours = num(key, value)?,
                "SESSION_IDLE_MINUTES" => self.session_idle_minutes = num(key, value)?,
                "STATION_SESSION_HOURS" => self.station_session_hours = num(key, value)?,
                "REQUIRE_ADMIN_TOTP" => self.require_admin_totp = yes_no(key, value)?,
                "LOCKOUT_AFTER" => self.lockout_after = num(key, value)?,
                "LOCKOUT_MINUTES" => self.lockout_minutes = num(key, value)?,
                "LOGIN_ATTEMPTS_PER_IP" => self.login_attempts_per_ip = num(key, value)?,
                "LOGIN_ATTEMPTS_PER_USER" => self.login_attempts_per_user = num(key, value)?,
                "MAX_DISPATCHERS_PER_AREA" => self.max_dispatchers_per_area = num(key, value)?,
                "TLS_CERT" => self.tls_cert = Some(PathBuf::from(value)),
                "TLS_KEY" => self.tls_key = Some(PathBuf::from(value)),
                "UTC_OFFSET" => self.utc_offset = value.clone(),
                "SMTP_HOST" => self.smtp_host = Some(value.clone()),
                "SMTP_PORT" => self.smtp_port = num(key, value)?,
                "SMTP_SECURITY" => self.smtp_security = value.clone(),
                "SMTP_USERNAME" => self.smtp_username = Some(value.clone()),
                "SMTP_PASSWORD" => self.smtp_password = Some(value.clone()),
                "SMTP_PASSWORD_FILE" => {
                    self.smtp_password = Some(
                        std::fs::read_to_string(value)
                            .map_err(|e| bad(format!("cannot read {key} ({value}): {e}")))?
                            .trim()
                            .to_string(),
                    )
                }
                "SMTP_FROM" => self.smtp_from = value.clone(),
                "SUMMARY_MAIL_AT" => self.summary_mail_at = value.clone(),
                "IMPORT_MAX_BYTES" => self.import_max_bytes = num(key, value)?,
                "IMPORT_DIR" => self.import_dir = PathBuf::from(value),
                "CHILD_PATTERN" => self.formats.child_pattern = value.clone(),
                // Read by the command line, not settings of the server itself.
                "PASSWORD" | "CONFIG" | "LOG" | "TEST_DATABASE_URL" => {}
                _ => {
                    return Err(bad(format!(
                        "{key} is not a setting TraitorTrack knows; check the spelling"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Checks every setting and compiles the formats.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            bad(format!(
                "listen must be an address with a port such as 127.0.0.1:8080, not {:?}",
                self.listen
            ))
        })?;
        if !(self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
            || self.database_url.starts_with("sqlite://"))
        {
            return Err(bad(
                "database_url must start with postgres:// or sqlite://".to_string()
            ));
        }
        if !(1..=1000).contains(&self.max_connections) {
            return Err(bad("max_connections must be between 1 and 1000"));
        }
        let formats =
            Formats::new(self.formats.clone()).map_err(|e| bad(format!("formats: {e}")))?;
        if !(self.kg_per_child.is_finite()
            && self.kg_per_child > 0.0
            && self.kg_per_child <= 1000.0)
        {
            return Err(bad("kg_per_child must be more than 0 and at most 1000"));
        }
        if !(0..=7 * 24 * 3600).contains(&self.undo_window_secs) {
            return Err(bad(
                "undo_window_secs must be between 0 and 604800 (7 days)",
            ));
        }
        for (name, hours) in [
            ("session_hours", self.session_hours),
            ("station_session_hours", self.station_session_hours),
        ] {
            if !(1..=24 * 30).contains(&hours) {
                return Err(bad(format!("{name} must be between 1 and 720")));
            }
        }
        if !(1..=24 * 60).contains(&self.session_idle_minutes) {
            return Err(bad("session_idle_minutes must be between 1 and 1440"));
        }
        if !(1..=100).contains(&self.lockout_after) {
            return Err(bad("lockout_after must be between 1 and 100"));
        }
        if !(1..=24 * 60).contains(&self.lockout_minutes) {
            return Err(bad("lockout_minutes must be between 1 and 1440"));
        }
        for (name, n) in [
            ("login_attempts_per_ip", self.login_attempts_per_ip),
            ("login_attempts_per_user", self.login_attempts_per_user),
        ] {
            if !(1..=100_000).contains(&n) {
                return Err(bad(format!("{name} must be between 1 and 100000")));
            }
        }
        if !(1..=10_000).contains(&self.max_dispatchers_per_area) {
            return Err(bad("max_dispatchers_per_area must be between 1 and 10000"));
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                for (name, path) in [("tls_cert", cert), ("tls_key", key)] {
                    if !path.is_file() {
                        return Err(bad(format!(
                            "{name}: there is no file at {}",
                            path.display()
                        )));
                    }
                }
                Some(Tls {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            _ => {
                return Err(bad(
                    "built-in HTTPS needs both tls_cert and tls_key (or neither)",
                ))
            }
        };
        if !(1024..=4 * 1024 * 1024 * 1024).contains(&self.import_max_bytes) {
            return Err(bad(
                "import_max_bytes must be between 1024 (1 KB) and 4294967296 (4 GB)",
            ));
        }
        if self.import_dir.as_os_str().is_empty() {
            return Err(bad("import_dir must name a folder"));
        }
        let fmt = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
        let utc_offset = UtcOffset::parse(self.utc_offset.trim(), &fmt).map_err(|_| {
            bad(format!(
                "utc_offset must look like +05:30 or -03:00, not {:?}",
                self.utc_offset
            ))
        })?;
        let smtp = self.smtp()?;
        let summary_mail_at = time::Time::parse(
            self.summary_mail_at.trim(),
            time::macros::format_description!("[hour]:[minute]"),
        )
        .map_err(|_| {
            bad(format!(
                "summary_mail_at must be a time of day such as 20:00, not {:?}",
                self.summary_mail_at
            ))
        })?;
        Ok(Settings {
            listen,
            database_url: self.database_url.clone(),
            max_connections: self.max_connections,
            formats,
            kg_per_child: self.kg_per_child,
            undo_window: time::Duration::seconds(self.undo_window_secs),
            session_ttl: time::Duration::hours(self.session_hours),
            session_idle: time::Duration::minutes(self.session_idle_minutes),
            station_session_ttl: time::Duration::hours(self.station_session_hours),
            utc_offset,
            require_admin_totp: self.require_admin_totp,
            lockout_after: self.lockout_after,
            lockout: time::Duration::minutes(self.lockout_minutes),
            login_attempts_per_ip: self.login_attempts_per_ip,
            login_attempts_per_user: self.login_attempts_per_user,
            max_dispatchers_per_area: self.max_dispatchers_per_area,
            tls,
            smtp,
            summary_mail_at,
            import_max_bytes: self.import_max_bytes,
            import_dir: self.import_dir.clone(),
        })
    }

    /// The SMTP settings, checked; `None` without a host.
    fn smtp(&self) -> Result<Option<crate::mail::Smtp>, ConfigError> {
        use crate::mail::{mailbox, Security, Smtp};
        let Some(host) = self
            .smtp_host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
        else {
            return Ok(None);
        };
        let security = Security::parse(&self.smtp_security).ok_or_else(|| {
            bad(format!(
                "smtp_security must be starttls, tls or none, not {:?}",
                self.smtp_security
            ))
        })?;
        if self.smtp_port == 0 {
            return Err(bad("smtp_port must be a port number such as 587"));
        }
        let from = mailbox(&self.smtp_from).ok_or_else(|| {
            bad(format!(
                "smtp_from must be a mail address such as TraitorTrack <tt@example.com>, not {:?}",
                self.smtp_from
            ))
        })?;
        let login = match (&self.smtp_username, &self.smtp_password) {
            (None, None) => None,
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            _ => {
                return Err(bad(
                    "an SMTP login needs both smtp_username and smtp_password (or neither)",
                ))
            }
        };
        Ok(Some(Smtp {
            host: host.to_string(),
            port: self.smtp_port,
            security,
            login,
            from,
        }))
    }
}

impl Settings {
    /// Settings from the defaults alone (the embedded SQLite database).
    pub fn defaults() -> Settings {
        match Config::default().validate() {
            Ok(s) => s,
            Err(e) => unreachable!("the built-in defaults are valid: {e}"),
        }
    }
}

/// The database address with any password replaced, for printing.
pub fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_follow_the_design() {
        let s = Config::default().validate().expect("defaults are valid");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.kg_per_child, 1.0);
        assert_eq!(s.undo_window, time::Duration::hours(1));
        assert_eq!(s.formats.spec().parents.len(), 2);
    }

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("tt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("tt.toml");
        std::fs::write(
            &path,
            "kg_per_child = 2.5\nundo_window_secs = 60\n[formats]\nchild_pattern = \"C[0-9]{4}\"\n[[formats.parents]]\nname = \"P\"\npattern = \"P[0-9]{3}\"\ncapacity = 5\n",
        )
        .expect("write config");
        let c = Config::load(
            Some(&path),
            &env(&[("TRAITORTRACK_UNDO_WINDOW_SECS", "120")]),
        )
        .expect("loads");
        let s = c.validate().expect("valid");
        assert_eq!(s.kg_per_child, 2.5);
        assert_eq!(s.undo_window, time::Duration::seconds(120));
        assert_eq!(
            s.formats.classify("P123"),
            traitortrack_protocol::CodeKind::Parent { capacity: 5 }
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_settings_are_named_plainly() {
        let e = Config::load(None, &env(&[("TRAITORTRACK_KG_PER_CHILD", "lots")])).unwrap_err();
        assert!(e
            .to_string()
            .contains("TRAITORTRACK_KG_PER_CHILD must be a number"));
        let e = Config::load(None, &env(&[("TRAITORTRACK_LISTNE", "x")])).unwrap_err();
        assert!(e.to_string().contains("not a setting"));
        let c = Config {
            listen: "nowhere".into(),
            ..Config::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("listen must be"));
        let c = Config {
            database_url: "mysql://x".into(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_partial_formats_table_keeps_the_other_defaults() {
        let c: Config =
            toml::from_str("[formats]\nchild_pattern = \"L[0-9]{7}\"\n").expect("parses");
        let s = c.validate().expect("valid");
        assert_eq!(s.formats.spec().parents.len(), 2);
        assert_eq!(
            s.formats.classify("L0016586"),
            traitortrack_protocol::CodeKind::Child
        );
        let typo = "[[formats.parents]]\nname = \"SB\"\npattern = \"SB[0-9]{5}\"\ncapacity = 30\ncapacty = 3\n";
        let e = toml::from_str::<Config>(typo).expect_err("unknown key refused");
        assert!(e.to_string().contains("capacty"), "{e}");
    }

    #[test]
    fn passwords_never_printed() {
        assert_eq!(
            redacted_url("postgres://tt:s3cret@db:5432/tt"),
            "postgres://tt:***@db:5432/tt"
        );
        assert_eq!(redacted_url("sqlite://x.db"), "sqlite://x.db");
    }
}
