//! The end-of-day summary by mail: once a day at `summary_mail_at` (the
//! warehouse's time), to the active admins and billers who have a mail
//! address, with the day's summary in the message and as CSV and Excel
//! files. A row in `mail_log` makes each day's mail go once, whichever
//! server process sends it; a failed send is tried again a few times.

use std::fmt::Write as _;

use time::Date;
use traitortrack_protocol::DaySummary;

use crate::audit::{self, Actor, Entry};
use crate::config::Settings;
use crate::db::{Db, Ts};
use crate::error::Result;
use crate::export::{self, Format};
use crate::mail::{self, File, Smtp};
use crate::{on, summary, users};

const KIND: &str = "summary";
/// Sends tried for one day before giving up (each failure is logged).
const MAX_ATTEMPTS: i32 = 5;
/// The wait before a failed send is tried again.
const RETRY_AFTER: time::Duration = time::Duration::minutes(10);

/// What a check did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No SMTP server is set, or the day's time has not come.
    NotDue,
    /// Today's mail went already, is being sent by another process, or
    /// failed too often.
    Done,
    /// Sent to this many readers (none when no admin or biller has an address).
    Sent { day: Date, recipients: usize },
}

/// Sends today's summary if its time has come and it has not gone yet.
pub async fn send_if_due(db: &Db, settings: &Settings, now: Ts) -> Result<Outcome> {
    let Some(smtp) = &settings.smtp else {
        return Ok(Outcome::NotDue);
    };
    let local = now.time().to_offset(settings.utc_offset);
    if local.time() < settings.summary_mail_at {
        return Ok(Outcome::NotDue);
    }
    let day = local.date();
    if !claim(db, day, now).await? {
        return Ok(Outcome::Done);
    }
    match deliver(db, settings, smtp, day).await {
        Ok(recipients) => {
            finish(db, day, now, recipients).await?;
            Ok(Outcome::Sent { day, recipients })
        }
        Err(e) => {
            let text = e.to_string();
            on!(db.writer(), |c| sqlx::query(
                "UPDATE mail_log SET last_error = $3 WHERE kind = $1 AND day = $2"
            )
            .bind(KIND)
            .bind(day.to_string())
            .bind(&text)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            Err(e)
        }
    }
}

/// Takes today's send for this process: the first try, or another after a
/// failure long enough ago. Answers whether it is ours.
async fn claim(db: &Db, day: Date, now: Ts) -> Result<bool> {
    let retry_before = Ts::new(now.time() - RETRY_AFTER);
    let claimed: Option<i32> = on!(db.writer(), |c| sqlx::query_scalar(
        "INSERT INTO mail_log (kind, day, attempts, tried_at) VALUES ($1, $2, 1, $3)
         ON CONFLICT (kind, day) DO UPDATE
           SET attempts = mail_log.attempts + 1, tried_at = excluded.tried_at, last_error = NULL
           WHERE mail_log.sent_at IS NULL AND mail_log.attempts < $4 AND mail_log.tried_at < $5
         RETURNING attempts"
    )
    .bind(KIND)
    .bind(day.to_string())
    .bind(now)
    .bind(MAX_ATTEMPTS)
    .bind(retry_before)
    .fetch_optional(c)
    .await)?;
    Ok(claimed.is_some())
}

/// Marks the day's mail sent, and audits it.
async fn finish(db: &Db, day: Date, now: Ts, recipients: usize) -> Result<()> {
    let mut tx = db.begin().await?;
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE mail_log SET sent_at = $3, recipients = $4 WHERE kind = $1 AND day = $2"
    )
    .bind(KIND)
    .bind(day.to_string())
    .bind(now)
    .bind(i64::try_from(recipients).unwrap_or(i64::MAX))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let actor = Actor {
        username: Some("system".into()),
        ..Actor::default()
    };
    audit::record(
        &mut tx,
        &actor,
        now,
        Entry {
            action: "summary_mailed",
            entity: "mail",
            code: Some(&day.to_string()),
            before: None,
            after: Some(serde_json::json!({ "recipients": recipients })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sends the day's summary to its readers; answers how many.
async fn deliver(db: &Db, settings: &Settings, smtp: &Smtp, day: Date) -> Result<usize> {
    let readers = users::summary_readers(db).await?;
    let mut to = Vec::new();
    for (username, address) in &readers {
        match mail::mailbox(&format!("{username} <{address}>")) {
            Some(m) => to.push(m),
            None => tracing::warn!(username, "a user's mail address cannot be used; skipped"),
        }
    }
    if to.is_empty() {
        tracing::info!(%day, "no admin or biller has a mail address: the summary is not mailed");
        return Ok(0);
    }
    let s = summary::day_summary(db, settings, day).await?;
    let mut files = Vec::new();
    for format in [Format::Xlsx, Format::Csv] {
        files.push(File {
            name: format!("traitortrack-summary-{day}.{}", format.extension()),
            content_type: format.content_type(),
            bytes: export::summary_file(&s, settings, format).await?,
        });
    }
    mail::send(
        smtp,
        &to,
        &format!("TraitorTrack: bills of {day}"),
        &text(&s),
        files,
    )
    .await?;
    tracing::info!(%day, recipients = to.len(), "the end-of-day summary is mailed");
    Ok(to.len())
}

/// The summary in plain words, for the body of the mail.
pub fn text(s: &DaySummary) -> String {
    let mut out = String::new();
    let t = &s.totals;
    let _ = writeln!(
        out,
        "Bills of {} (the day runs midnight to midnight at UTC{}).",
        s.date, s.utc_offset
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "Bills made: {}", t.bills_created);
    let _ = writeln!(out, "Bills closed: {}", t.bills_closed);
    let b = &t.by_status;
    let _ = writeln!(
        out,
        "Now: {} new, {} in progress, {} ready to close, {} closed",
        b.new, b.in_progress, b.ready, b.closed
    );
    let _ = writeln!(out, "Parent bags: {}", t.parent_bags);
    let _ = writeln!(out, "Child bags: {}", t.child_bags);
    let _ = writeln!(
        out,
        "Weight: {:.1} kg of {:.1} kg expected",
        t.actual_weight_kg, t.expected_weight_kg
    );
    if !s.billers.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "By biller:");
        for line in &s.billers {
            let who = line.biller.as_deref().unwrap_or("(unknown)");
            let l = &line.totals;
            let _ = writeln!(
                out,
                "  {who}: {} made, {} closed, {} parent bags, {} child bags, {:.1} kg",
                l.bills_created, l.bills_closed, l.parent_bags, l.child_bags, l.actual_weight_kg
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "The attached files hold the same figures (Excel and CSV)."
    );
    out
}
