//! The audit log (admins): filters by actor, action, entity and code and a
//! date range, newest first in keyset pages, and the button that checks the
//! hash chain. The same domain functions as `/api/v1/audit`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

use super::access::{AdminForm, AdminPage, Signed};
use super::exports::Downloads;
use super::pages::{count, page, Refusal};
use super::{frame, NoFields};
use crate::audit::{self, AuditEntry, AuditFilter, Verification};
use crate::db::Ts;
use crate::error::{Error, Result};
use crate::export::Kind as ExportKind;
use crate::AppState;

/// Rows on one page.
const PAGE: u32 = 100;
/// The most characters of a row's before and after shown in the table.
const MAX_CHANGE: usize = 240;
/// The longest text a filter field takes.
const MAX_FILTER: usize = 64;

/// Actions the filter suggests (any other may be typed).
const ACTIONS: &[&str] = &[
    "login",
    "login_failed",
    "lockout",
    "logout",
    "sessions_revoked",
    "user_create",
    "role_change",
    "area_change",
    "lock",
    "unlock",
    "deactivate",
    "reactivate",
    "password_change",
    "password_reset",
    "totp_enrol",
    "totp_disable",
    "recovery_code_used",
    "promotion_request",
    "promotion_approve",
    "promotion_reject",
    "link",
    "unlink",
    "unlink_correction",
    "bill_create",
    "bill_update",
    "bill_add",
    "bill_remove",
    "bill_close",
    "bill_reopen",
    "station_register",
    "station_key",
    "station_revoke",
    "area_create",
    "area_rename",
    "area_retire",
];

/// What the audit rows are about.
const ENTITIES: &[(&str, &str)] = &[
    ("user", "Users"),
    ("bag", "Bags"),
    ("bill", "Bills"),
    ("station", "Stations"),
    ("area", "Areas"),
];

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    entity: Option<String>,
    code: Option<String>,
    /// A date, `2026-11-22`: rows from the start of that day.
    from: Option<String>,
    /// A date: rows to the end of that day.
    to: Option<String>,
    /// The id to continue before (the previous page's last).
    before: Option<String>,
}

#[derive(Debug, Serialize)]
struct AuditRowView {
    id: i64,
    at: String,
    actor: String,
    station: Option<i64>,
    action: String,
    entity: String,
    code: Option<String>,
    before: Option<String>,
    after: Option<String>,
    seq: Option<i64>,
    request_id: Option<String>,
    ip: Option<String>,
}

/// A date and time to the second, as the warehouse reads it.
fn exact(t: OffsetDateTime, offset: UtcOffset) -> String {
    let t = t.to_offset(offset);
    format!(
        "{} {} {}, {:02}:{:02}:{:02}",
        t.day(),
        &t.month().to_string()[..3],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A before/after value in one line, cut to [`MAX_CHANGE`] characters.
fn short(v: Option<serde_json::Value>) -> Option<String> {
    let text = match v? {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    if text.chars().count() > MAX_CHANGE {
        let cut: String = text.chars().take(MAX_CHANGE).collect();
        Some(format!("{cut}…"))
    } else {
        Some(text)
    }
}

fn view(e: AuditEntry, offset: UtcOffset) -> AuditRowView {
    AuditRowView {
        id: e.id,
        at: exact(e.at, offset),
        actor: e.actor.unwrap_or_else(|| "system".into()),
        station: e.station_id,
        action: e.action,
        entity: e.entity,
        code: e.entity_code,
        before: short(e.before),
        after: short(e.after),
        seq: e.seq,
        request_id: e.request_id,
        ip: e.ip,
    }
}

/// A filter field: trimmed, cut to [`MAX_FILTER`] characters, empty is none.
fn text(v: &Option<String>) -> Option<String> {
    let t: String = v
        .as_deref()?
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILTER)
        .collect();
    Some(t).filter(|t| !t.is_empty())
}

/// The start of the day `raw` (`2026-11-22`) names, in the warehouse's time,
/// and `days` days after it.
fn day_start(raw: &str, days: i64, offset: UtcOffset, which: &str) -> Result<Ts> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(raw.trim(), &format).map_err(|_| {
        Error::bad_input(
            "bad_date",
            format!("The {which} date must be a date like 2026-11-22."),
        )
    })?;
    let start = date.with_time(Time::MIDNIGHT).assume_offset(offset) + Duration::days(days);
    Ok(Ts::new(start))
}

/// The domain's filter from the page's fields; a refusal names the field.
fn filter_of(q: &AuditQuery, offset: UtcOffset) -> Result<AuditFilter> {
    let from = text(&q.from)
        .map(|d| day_start(&d, 0, offset, "from"))
        .transpose()?;
    let to = text(&q.to)
        .map(|d| day_start(&d, 1, offset, "to"))
        .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            return Err(Error::bad_input(
                "bad_dates",
                "The to date is before the from date. Swap them.",
            ));
        }
    }
    let before = match text(&q.before) {
        None => None,
        Some(b) => Some(b.parse::<i64>().map_err(|_| {
            Error::bad_input(
                "bad_page",
                "This page address is wrong. Start from the newest rows.",
            )
        })?),
    };
    Ok(AuditFilter {
        actor: text(&q.actor),
        action: text(&q.action).map(|a| a.to_lowercase()),
        entity: text(&q.entity),
        entity_code: text(&q.code),
        from,
        to,
        before,
        limit: PAGE,
    })
}

/// The chain check's outcome in plain words.
#[derive(Debug, Serialize)]
struct Outcome {
    ok: bool,
    headline: String,
    details: Vec<String>,
}

fn outcome(v: &Verification) -> Outcome {
    let mut details = Vec::new();
    let headline = if v.ok {
        format!(
            "The audit log is intact: all {} sealed rows are unchanged and none is missing.",
            count(v.rows_checked as i64)
        )
    } else {
        details.push(
            v.first_problem
                .clone()
                .unwrap_or_else(|| "A problem was found.".into()),
        );
        if v.problems > 1 {
            details.push(format!(
                "{} problems in all; the first is shown.",
                count(v.problems as i64)
            ));
        }
        details.push(format!(
            "{} sealed rows were checked.",
            count(v.rows_checked as i64)
        ));
        "The audit log has been tampered with.".to_string()
    };
    if v.unsealed > 0 {
        details.push(format!(
            "{} newer rows are still waiting to be sealed; they are checked next time.",
            count(v.unsealed as i64)
        ));
    }
    Outcome {
        ok: v.ok,
        headline,
        details,
    }
}

async fn audit_page(
    state: &AppState,
    signed: &Signed,
    q: AuditQuery,
    error: Option<String>,
    checked: Option<Outcome>,
) -> Result<Response> {
    let offset = state.settings.utc_offset;
    let (filter, error) = match filter_of(&q, offset) {
        Ok(f) => (f, error),
        Err(Error::Refused { message, .. }) => (
            AuditFilter {
                limit: PAGE,
                ..AuditFilter::default()
            },
            Some(message),
        ),
        Err(e) => return Err(e),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let filtered = filter.actor.is_some()
        || filter.action.is_some()
        || filter.entity.is_some()
        || filter.entity_code.is_some()
        || filter.from.is_some()
        || filter.to.is_some();
    let paged = filter.before.is_some();
    // The downloads take the same filter, every page of it.
    let downloads = error.is_none().then(|| {
        let from = text(&q.from).unwrap_or_default();
        let to = text(&q.to).unwrap_or_default();
        Downloads::of(
            ExportKind::Audit,
            &[
                ("actor", filter.actor.as_deref().unwrap_or_default()),
                ("action", filter.action.as_deref().unwrap_or_default()),
                ("entity", filter.entity.as_deref().unwrap_or_default()),
                (
                    "entity_code",
                    filter.entity_code.as_deref().unwrap_or_default(),
                ),
                ("from", &from),
                ("to", &to),
            ],
        )
    });
    let found = audit::list(&state.db, filter).await?;
    let rows: Vec<AuditRowView> = found.items.into_iter().map(|e| view(e, offset)).collect();
    Ok(page(
        status,
        "audit.html",
        &frame(signed, "Audit log", "audit"),
        context! {
            rows => Value::from(Serde(&rows)),
            q => Value::from(Serde(&q)),
            filtered,
            paged,
            next_before => found.next_before,
            actions => Value::from(Serde(ACTIONS)),
            entities => Value::from(Serde(&ENTITIES)),
            error,
            downloads => Value::from(Serde(&downloads)),
            checked => Value::from(Serde(&checked)),
        },
    ))
}

/// The audit log, newest first, with its filters.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    AdminPage(signed): AdminPage,
    q: std::result::Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let (q, error) = match q {
        Ok(Query(q)) => (q, None),
        Err(_) => (
            AuditQuery::default(),
            Some("The filter could not be read. Fill it in again.".to_string()),
        ),
    };
    audit_page(&state, &signed, q, error, None)
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

/// Seals what is waiting and checks every sealed row against the chain;
/// the page says what was found.
#[tracing::instrument(skip_all)]
pub async fn verify(
    State(state): State<AppState>,
    AdminForm { mut signed, .. }: AdminForm<NoFields>,
) -> Response {
    let checked = match audit::verify(&state.db).await {
        Ok(v) => outcome(&v),
        Err(e) => return Refusal::from(e).into_response(),
    };
    if let Err(refusal) = signed.count_unread(&state).await {
        return refusal.into_response();
    }
    audit_page(&state, &signed, AuditQuery::default(), None, Some(checked))
        .await
        .unwrap_or_else(|e| Refusal::from(e).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_days_in_the_warehouse_time() {
        let ist = time::macros::offset!(+05:30);
        let q = AuditQuery {
            from: Some("2026-11-22".into()),
            to: Some(" 2026-11-22 ".into()),
            ..AuditQuery::default()
        };
        let f = filter_of(&q, ist).expect("a filter");
        assert_eq!(
            f.from.map(Ts::time),
            Some(time::macros::datetime!(2026-11-21 18:30 UTC))
        );
        assert_eq!(
            f.to.map(Ts::time),
            Some(time::macros::datetime!(2026-11-22 18:30 UTC))
        );
        for bad in [
            AuditQuery {
                from: Some("22/11/2026".into()),
                ..AuditQuery::default()
            },
            AuditQuery {
                from: Some("2026-11-23".into()),
                to: Some("2026-11-22".into()),
                ..AuditQuery::default()
            },
            AuditQuery {
                before: Some("ten".into()),
                ..AuditQuery::default()
            },
        ] {
            let e = filter_of(&bad, ist).expect_err("refused");
            assert!(matches!(e, Error::Refused { .. }), "{e}");
        }
    }

    #[test]
    fn the_outcome_names_the_first_problem() {
        let v = Verification {
            ok: false,
            rows_checked: 1234,
            first_problem: Some("Audit row 7 (position 7 in the chain) was changed".into()),
            problems: 2,
            unsealed: 0,
            outside_chain: 0,
        };
        let o = outcome(&v);
        assert!(!o.ok);
        assert_eq!(o.headline, "The audit log has been tampered with.");
        assert!(o.details[0].starts_with("Audit row 7 "), "{o:?}");
        assert!(
            o.details.iter().any(|d| d.contains("1,234 sealed rows")),
            "{o:?}"
        );
        let fine = outcome(&Verification {
            ok: true,
            problems: 0,
            first_problem: None,
            ..v
        });
        assert!(fine.ok);
        assert!(
            fine.headline
                .contains("all 1,234 sealed rows are unchanged"),
            "{fine:?}"
        );
    }

    #[test]
    fn long_changes_are_cut() {
        let long = serde_json::json!({"reason": "x".repeat(500)});
        let cut = short(Some(long)).expect("text");
        assert_eq!(cut.chars().count(), MAX_CHANGE + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(short(None), None);
        assert_eq!(
            short(Some(serde_json::json!("plain"))).as_deref(),
            Some("plain")
        );
    }
}
