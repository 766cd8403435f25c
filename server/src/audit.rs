//! The audit trail: one row for every change and security event, written in the
//! same transaction as the change it describes.

use serde_json::Value;

use crate::db::{Ts, Tx};
use crate::error::Result;
use crate::on;

/// Who is acting, from where, in which request: attached to every audit row.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub station_id: Option<i64>,
    pub request_id: Option<String>,
    /// Already anonymised (see [`anonymize_ip`]).
    pub ip: Option<String>,
}

impl Actor {
    /// The same request, acting as another user (a station event names its worker).
    pub fn as_user(&self, user_id: i64, username: &str) -> Actor {
        Actor {
            user_id: Some(user_id),
            username: Some(username.to_string()),
            ..self.clone()
        }
    }
}

/// One audit row's subject.
pub struct Entry<'a> {
    pub action: &'a str,
    pub entity: &'a str,
    pub code: Option<&'a str>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub async fn record(tx: &mut Tx, actor: &Actor, at: Ts, entry: Entry<'_>) -> Result<()> {
    let before = entry.before.map(|v| v.to_string());
    let after = entry.after.map(|v| v.to_string());
    on!(tx.conn(), |c| {
        sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor, station_id, action, entity, entity_code, before, after, request_id, ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )
    .bind(at)
    .bind(actor.user_id)
    .bind(actor.username.as_deref())
    .bind(actor.station_id)
    .bind(entry.action)
    .bind(entry.entity)
    .bind(entry.code)
    .bind(before.as_deref())
    .bind(after.as_deref())
    .bind(actor.request_id.as_deref())
    .bind(actor.ip.as_deref())
    .execute(c)
    .await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Drops the host part of an address: the last octet of IPv4, the last 80 bits of IPv6.
pub fn anonymize_ip(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0")
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return anonymize_ip(std::net::IpAddr::V4(v4));
            }
            let s = v6.segments();
            std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lose_their_host_part() {
        assert_eq!(
            anonymize_ip("192.168.7.42".parse().expect("ip")),
            "192.168.7.0"
        );
        assert_eq!(
            anonymize_ip("2001:db8:1:2:3:4:5:6".parse().expect("ip")),
            "2001:db8:1::"
        );
        assert_eq!(
            anonymize_ip("::ffff:10.1.2.3".parse().expect("ip")),
            "10.1.2.0"
        );
    }
}
