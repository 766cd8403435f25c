//! JSON bodies of the `/api/v1` API, shared by the server and the stations.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The most events one `POST /api/v1/events` request may carry.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;

/// The header a station's requests carry its app version in (optional).
pub const STATION_VERSION_HEADER: &str = "x-station-version";
/// The header a station's requests carry, as a whole number, how many events
/// wait in its outbox besides the ones the request itself carries (optional).
pub const STATION_QUEUE_HEADER: &str = "x-station-queue";
/// The longest app version a station may report.
pub const MAX_STATION_VERSION_LEN: usize = 40;

/// Every error answer: `{"error":{"code":"snake_case","message":"plain words"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Biller,
    Dispatcher,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Biller => "biller",
            Role::Dispatcher => "dispatcher",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "biller" => Some(Role::Biller),
            "dispatcher" => Some(Role::Dispatcher),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The 6-digit code of two-step login, for accounts that have it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// A one-time recovery code, in place of `totp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub role: Role,
    pub dispatch_area: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub user: UserInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateStation {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StationCreated {
    pub id: i64,
    pub name: String,
    /// Shown once: the server keeps only a hash of it.
    pub key: String,
}

/// What a station needs to know of the server's settings to judge scans offline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StationSettings {
    pub station: String,
    pub formats: crate::codes::FormatSpec,
    pub undo_window_secs: i64,
    pub kg_per_child: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Link,
    Unlink,
    BillAdd,
    BillRemove,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Link => "link",
            EventType::Unlink => "unlink",
            EventType::BillAdd => "bill_add",
            EventType::BillRemove => "bill_remove",
        }
    }
}

/// One thing a worker did at a station, made and stored at the station first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// A UUIDv7 made at the station: the event's identity for exactly-once.
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The worker who scanned it.
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill: Option<String>,
    /// Why an admin removes a link that is not their own last scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was scanned, by the station's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventBatch {
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Took effect now.
    Applied,
    /// Took effect when it was first sent; this resend changed nothing.
    Duplicate,
    /// Refused, with a code and a plain message; it will never take effect.
    Rejected,
}

/// A parent bag's state after an event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParentState {
    pub code: String,
    pub children: u32,
    pub capacity: u32,
    pub complete: bool,
}

/// A bill's state after an event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BillState {
    pub code: String,
    pub status: BillStatus,
    pub parent_count: u32,
    pub capacity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EventResult {
    pub id: Uuid,
    pub status: EventStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill: Option<BillState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventResults {
    pub results: Vec<EventResult>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum BagKind {
    Parent,
    Child,
}

impl BagKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BagKind::Parent => "parent",
            BagKind::Child => "child",
        }
    }

    pub fn parse(s: &str) -> Option<BagKind> {
        match s {
            "parent" => Some(BagKind::Parent),
            "child" => Some(BagKind::Child),
            _ => None,
        }
    }
}

/// A child as listed in its parent, in link order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkedChild {
    pub code: String,
    #[serde(with = "time::serde::rfc3339")]
    pub linked_at: OffsetDateTime,
    pub linked_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bag {
    pub code: String,
    pub kind: BagKind,
    /// For a child: the parent it is in.
    pub parent: Option<String>,
    /// For a parent: its children in link order.
    pub children: Vec<LinkedChild>,
    pub child_count: u32,
    /// For a parent: how many children it holds when complete.
    pub capacity: Option<u32>,
    pub complete: bool,
    /// For a parent: the bill it is on.
    pub bill: Option<String>,
    pub dispatch_area: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A bag in a list: no children, for speed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BagSummary {
    pub code: String,
    pub kind: BagKind,
    pub child_count: u32,
    pub capacity: Option<u32>,
    pub complete: bool,
    pub bill: Option<String>,
    pub dispatch_area: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum BillStatus {
    New,
    InProgress,
    Ready,
    Closed,
}

impl BillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BillStatus::New => "new",
            BillStatus::InProgress => "in_progress",
            BillStatus::Ready => "ready",
            BillStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<BillStatus> {
        match s {
            "new" => Some(BillStatus::New),
            "in_progress" => Some(BillStatus::InProgress),
            "ready" => Some(BillStatus::Ready),
            "closed" => Some(BillStatus::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateBill {
    pub code: String,
    pub capacity: i64,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub vehicle_number: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PatchBill {
    #[serde(default)]
    pub capacity: Option<i64>,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub vehicle_number: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CloseBill {
    #[serde(default)]
    pub reason: Option<String>,
}

/// A parent bag on a bill.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BillParent {
    pub code: String,
    pub child_count: u32,
    pub capacity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bill {
    pub code: String,
    pub status: BillStatus,
    pub capacity: u32,
    pub destination: Option<String>,
    pub vehicle_number: Option<String>,
    pub description: Option<String>,
    pub parents: Vec<BillParent>,
    pub parent_count: u32,
    pub child_count: u64,
    pub actual_weight_kg: f64,
    pub expected_weight_kg: f64,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub closed_at: Option<OffsetDateTime>,
    pub close_reason: Option<String>,
}

/// A bill in a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BillSummary {
    pub code: String,
    pub status: BillStatus,
    pub capacity: u32,
    pub parent_count: u32,
    pub destination: Option<String>,
    pub vehicle_number: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BillsByStatus {
    pub new: i64,
    pub in_progress: i64,
    pub ready: i64,
    pub closed: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    pub bags: i64,
    pub parents: i64,
    pub children: i64,
    pub complete_parents: i64,
    pub links: i64,
    pub bills: BillsByStatus,
    pub scans_today: i64,
}

/// The end-of-day summary of one warehouse day (`GET /api/v1/bills/summary`).
/// The day's bills are those created or closed that day; each counts for the
/// biller who created it. Bags and weights are those on the bills now (a
/// closed bill no longer changes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DaySummary {
    /// The warehouse day, `YYYY-MM-DD`.
    pub date: String,
    /// The warehouse's offset from UTC (`+05:30`): the day runs from
    /// midnight to midnight there.
    pub utc_offset: String,
    pub kg_per_child: f64,
    pub totals: SummaryTotals,
    /// One line per biller with bills that day, by username.
    pub billers: Vec<BillerSummary>,
    /// The day's bills, in code order.
    pub bills: Vec<SummaryBill>,
}

/// Counts and weights over some of a day's bills.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SummaryTotals {
    /// Bills created that day.
    pub bills_created: i64,
    /// Bills closed that day.
    pub bills_closed: i64,
    /// The day's bills by their status now.
    pub by_status: BillsByStatus,
    pub parent_bags: i64,
    pub child_bags: i64,
    pub actual_weight_kg: f64,
    pub expected_weight_kg: f64,
}

/// The day's figures of one biller.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BillerSummary {
    /// Who created the bills; absent for bills whose creator is not known.
    pub biller: Option<String>,
    pub totals: SummaryTotals,
}

/// One of the day's bills.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SummaryBill {
    pub code: String,
    pub status: BillStatus,
    pub biller: Option<String>,
    pub destination: Option<String>,
    pub vehicle_number: Option<String>,
    /// Created that day (else closed that day, having been created before).
    pub created_that_day: bool,
    pub closed_that_day: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub closed_at: Option<OffsetDateTime>,
    pub capacity: u32,
    pub parent_count: u32,
    pub child_count: u64,
    pub actual_weight_kg: f64,
    pub expected_weight_kg: f64,
}
