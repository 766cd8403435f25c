//! Warehouse days: dates as people type them (`YYYY-MM-DD`), in the
//! warehouse's offset from UTC, and the times that bound them.

use time::{Date, OffsetDateTime, UtcOffset};

use crate::db::Ts;
use crate::error::{Error, Result};

/// Reads a date typed as `YYYY-MM-DD`; empty is none.
pub fn parse(raw: Option<&str>) -> Result<Option<Date>> {
    let Some(d) = raw.map(str::trim).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
        .map(Some)
        .map_err(|_| {
            let shown: String = d.chars().take(20).collect();
            Error::bad_input(
                "bad_date",
                format!("Give the date as YYYY-MM-DD (like 2026-03-31), not {shown:?}."),
            )
        })
}

/// The first moment of a warehouse day.
pub fn start(day: Date, offset: UtcOffset) -> Ts {
    Ts::new(OffsetDateTime::new_in_offset(
        day,
        time::Time::MIDNIGHT,
        offset,
    ))
}

/// `+05:30`, as people write an offset from UTC.
pub fn offset_text(offset: UtcOffset) -> String {
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
}

/// Whole warehouse days as times: at or after `from`, before `to`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    pub from: Option<Ts>,
    pub to: Option<Ts>,
}

impl Span {
    /// From the first moment of `first` to the end of `last` (both days
    /// included); either may be open.
    pub fn of(first: Option<Date>, last: Option<Date>, offset: UtcOffset) -> Result<Span> {
        if let (Some(f), Some(l)) = (first, last) {
            if l < f {
                return Err(Error::bad_input(
                    "bad_range",
                    format!("The last day ({l}) is before the first day ({f})."),
                ));
            }
        }
        Ok(Span {
            from: first.map(|d| start(d, offset)),
            to: last.and_then(Date::next_day).map(|d| start(d, offset)),
        })
    }

    /// [`Span::of`] for days as typed.
    pub fn parse(first: Option<&str>, last: Option<&str>, offset: UtcOffset) -> Result<Span> {
        Span::of(parse(first)?, parse(last)?, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_as_people_write_them() {
        assert_eq!(offset_text(time::macros::offset!(+05:30)), "+05:30");
        assert_eq!(offset_text(time::macros::offset!(UTC)), "+00:00");
        assert_eq!(offset_text(time::macros::offset!(-03:30)), "-03:30");
    }

    #[test]
    fn spans_cover_whole_warehouse_days() {
        let ist = time::macros::offset!(+05:30);
        let span = Span::parse(Some("2026-11-01"), Some("2026-11-01"), ist).expect("span");
        let from = span.from.expect("from").time();
        let to = span.to.expect("to").time();
        assert_eq!(from, time::macros::datetime!(2026-10-31 18:30 UTC));
        assert_eq!(to, time::macros::datetime!(2026-11-01 18:30 UTC));
        assert!(Span::parse(Some("2026-11-02"), Some("2026-11-01"), ist).is_err());
        let e = Span::parse(Some("1/11/2026"), None, ist).expect_err("bad date");
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
        let open = Span::parse(None, Some(""), ist).expect("open span");
        assert!(open.from.is_none() && open.to.is_none());
    }
}
