//! The download buttons of the console's lists: "Download CSV" and
//! "Download Excel" links to `GET /api/v1/exports/{kind}.{csv|xlsx}`, with
//! the list's filters named as the export API names them. The files come
//! from the API (the console cookie is a login there for a GET), so the
//! role check, the filters and the audit row are the export's own.

use super::bills::encoded;
use crate::export::Kind;
use crate::users::User;
use serde::Serialize;

/// The two links of one list.
#[derive(Debug, Clone, Serialize)]
pub struct Downloads {
    pub csv: String,
    pub xlsx: String,
}

impl Downloads {
    /// The export `kind` with these `(name, value)` filters; empty values
    /// are left out.
    pub fn of(kind: Kind, filters: &[(&str, &str)]) -> Downloads {
        let query: Vec<String> = filters
            .iter()
            .map(|(k, v)| (k, v.trim()))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encoded(v)))
            .collect();
        let link = |ext: &str| {
            let base = format!("/api/v1/exports/{}.{ext}", kind.name());
            if query.is_empty() {
                base
            } else {
                format!("{base}?{}", query.join("&"))
            }
        };
        Downloads {
            csv: link("csv"),
            xlsx: link("xlsx"),
        }
    }
}

/// Whether `user` may download the export of `kind`: the export's own
/// rule, so that nobody is shown a button that answers 403.
pub fn may(user: &User, kind: Kind) -> bool {
    kind.roles().contains(&user.role)
}

/// A yes/no filter of the console (`yes`, `no`) as the export takes it.
pub fn yes_no(value: &str) -> &'static str {
    match value {
        "yes" => "true",
        "no" => "false",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_filters_that_are_set() {
        let d = Downloads::of(
            Kind::Bags,
            &[("search", "SB 1/2"), ("kind", ""), ("complete", "true")],
        );
        assert_eq!(
            d.csv,
            "/api/v1/exports/bags.csv?search=SB%201%2F2&complete=true"
        );
        assert_eq!(
            d.xlsx,
            "/api/v1/exports/bags.xlsx?search=SB%201%2F2&complete=true"
        );
        let d = Downloads::of(Kind::Audit, &[("actor", " ")]);
        assert_eq!(d.csv, "/api/v1/exports/audit.csv");
        assert_eq!(yes_no("yes"), "true");
        assert_eq!(yes_no("no"), "false");
        assert_eq!(yes_no("maybe"), "");
    }
}
