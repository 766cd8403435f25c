//! Imports of the warehouses' sheets: bags tables, bills tables, child ->
//! parent sheets and parent -> bill sheets, from CSV or XLSX/XLSM.
//!
//! The file is read on a thread of its own ([`read`]), turned into planned
//! operations ([`plan`], pure), applied in batches of [`BATCH_ROWS`] rows
//! ([`apply`]) and each row's outcome written to the result files ([`report`])
//! on another thread. Memory stays bounded: rows travel in groups over bounded
//! channels, a batch holds a few thousand rows, and the result files stream to
//! disk. Row outcomes are idempotent (a row applied before comes out "already
//! there"), and each batch commits with the import's progress, so an import
//! killed half-way and run again ends where one run would have.
//!
//! Bags and links an import makes carry the import's id (`bags.import_id`,
//! `links.import_id`): a bag's history finds "imported by import N" there
//! ([`history_of`]) instead of in a row per bag in the audit log, which would
//! double the work of a 1,800,000-row import. The audit log gets one row per import.

pub mod apply;
pub mod plan;
pub mod read;
pub mod report;

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use traitortrack_protocol::Role;

use crate::audit::{self, Actor, Entry};
use crate::config::Settings;
use crate::db::{Db, Ts};
use crate::error::{Error, Kind, Result};
use crate::on;
use crate::users::User;
use plan::{Op, Planner, RowRef};

/// Rows applied per batch (and per transaction, unless all-or-nothing or a preview).
pub const BATCH_ROWS: usize = 5_000;
/// Refused rows kept for the summary.
const FIRST_PROBLEMS: usize = 20;

/// The four layouts of sheet an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// code, kind, parent code (or qr_id, type, parent_qr_id).
    Bags,
    /// code, description, capacity, destination, vehicle number (or bill_id, parent_bag_count).
    Bills,
    /// Runs of child labels, each closed by its parent's row.
    ChildParent,
    /// Runs of parent codes, each closed by a "Bill No." row.
    ParentBill,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Bags => "bags",
            Layout::Bills => "bills",
            Layout::ChildParent => "child-parent",
            Layout::ParentBill => "parent-bill",
        }
    }

    pub fn parse(s: &str) -> Option<Layout> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "bags" => Some(Layout::Bags),
            "bills" => Some(Layout::Bills),
            "child-parent" => Some(Layout::ChildParent),
            "parent-bill" => Some(Layout::ParentBill),
            _ => None,
        }
    }
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Linked,
    AlreadyThere,
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Linked => "linked",
            Outcome::AlreadyThere => "already there",
            Outcome::Refused => "refused",
        }
    }
}

/// One row's outcome, as the result file lists it.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    pub at: RowRef,
    pub code: String,
    pub outcome: Outcome,
    /// The refusal's stable code.
    pub reason: Option<&'static str>,
    pub message: String,
}

/// Rows per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub created: u64,
    pub linked: u64,
    pub already_there: u64,
    pub refused: u64,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Created => self.created += 1,
            Outcome::Linked => self.linked += 1,
            Outcome::AlreadyThere => self.already_there += 1,
            Outcome::Refused => self.refused += 1,
        }
    }

    pub fn rows(&self) -> u64 {
        self.created + self.linked + self.already_there + self.refused
    }
}

/// A refused row, for the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub sheet: String,
    pub row: u32,
    pub code: String,
    pub reason: String,
    pub message: String,
}

/// An import as the API and the command line show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub id: i64,
    pub kind: Layout,
    pub file_name: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// The admin who ran it; none for the command line without `--as`.
    pub by: Option<String>,
    pub dry_run: bool,
    pub all_or_nothing: bool,
    /// running, done, rolled_back (all-or-nothing with refused rows), failed, interrupted.
    pub state: String,
    /// Rows with an outcome.
    pub rows: u64,
    /// Rows of the file read so far, and about how many it has.
    pub rows_done: u64,
    pub total_rows: u64,
    pub rows_per_sec: f64,
    pub counts: Counts,
    /// The first refused rows.
    pub problems: Vec<Problem>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
}

/// An import's progress as it runs, shared with whoever shows it.
#[derive(Debug)]
pub struct Live {
    pub rows_done: AtomicU64,
    pub total_rows: AtomicU64,
    pub started: Instant,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            rows_done: AtomicU64::new(0),
            total_rows: AtomicU64::new(0),
            started: Instant::now(),
        }
    }
}

impl Live {
    pub fn rows_per_sec(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            self.rows_done.load(Ordering::Relaxed) as f64 / secs
        }
    }
}

/// The imports running in this process, by id.
#[derive(Debug, Clone, Default)]
pub struct Running(Arc<Mutex<HashMap<i64, Arc<Live>>>>);

impl Running {
    pub fn add(&self, id: i64, live: Arc<Live>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(id, live);
        }
    }

    pub fn remove(&self, id: i64) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&id);
        }
    }

    pub fn get(&self, id: i64) -> Option<Arc<Live>> {
        self.0.lock().ok().and_then(|map| map.get(&id).cloned())
    }
}

/// What to import.
pub struct Request<'a> {
    pub layout: Layout,
    pub file: &'a Path,
    /// The name shown for the file (its name on the admin's computer).
    pub file_name: &'a str,
    pub dry_run: bool,
    pub all_or_nothing: bool,
}

/// An import checked and recorded, ready to run.
pub struct Prepared {
    pub id: i64,
    layout: Layout,
    file: PathBuf,
    file_type: read::FileType,
    file_name: String,
    sha256: String,
    size: u64,
    user_id: Option<i64>,
    username: Option<String>,
    actor: Actor,
    dry_run: bool,
    all_or_nothing: bool,
    total_rows: u64,
    started_at: Ts,
}

/// The file is larger than the setting allows, in plain words.
pub fn too_large(size: Option<u64>, max: u64) -> Error {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let size = size.map_or_else(String::new, |s| format!(" ({:.1} MB)", mb(s)));
    Error::refused(
        Kind::TooLarge,
        "file_too_large",
        format!(
            "The file is too large{size}: an import takes at most {:.0} MB. Split it into smaller files.",
            mb(max)
        ),
    )
}

fn unreadable(e: impl std::fmt::Display) -> Error {
    Error::bad_input("unreadable_file", e.to_string())
}

fn file_name_shown(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() {
        "upload".into()
    } else {
        clean.trim().to_string()
    }
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks the file and who asks, and records the import as running.
pub async fn prepare(
    db: &Db,
    settings: &Settings,
    user: Option<&User>,
    actor: &Actor,
    req: Request<'_>,
    now: Ts,
) -> Result<Prepared> {
    if let Some(user) = user {
        user.require(&[Role::Admin], "import files")?;
    }
    let size = std::fs::metadata(req.file)
        .map_err(|e| unreadable(format!("The file cannot be read: {e}.")))?
        .len();
    if size > settings.import_max_bytes {
        return Err(too_large(Some(size), settings.import_max_bytes));
    }
    let file = req.file.to_path_buf();
    let (file_type, sha256, total_rows) = tokio::task::spawn_blocking(move || {
        let kind = read::sniff(&file).map_err(unreadable)?;
        let sha =
            sha256_of(&file).map_err(|e| unreadable(format!("The file cannot be read: {e}.")))?;
        Ok::<_, Error>((kind, sha, read::count_rows(&file, kind)))
    })
    .await
    .map_err(|e| Error::Internal(format!("the file check stopped: {e}")))??;
    let file_name = file_name_shown(req.file_name);
    let user_id = user.map(|u| u.id);
    let username = user.map(|u| u.username.clone()).or(actor.username.clone());

    let mut tx = db.begin().await?;
    // A run of the same file that stopped half-way is not running any more.
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE imports SET state = 'interrupted', updated_at = $2
         WHERE sha256 = $1 AND state = 'running'"
    )
    .bind(&sha256)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    let id: i64 = on!(tx.conn(), |c| sqlx::query_scalar(
        "INSERT INTO imports (user_id, username, kind, file_name, sha256, size_bytes, dry_run,
                              all_or_nothing, state, total_rows, started_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'running', $9, $10, $10) RETURNING id"
    )
    .bind(user_id)
    .bind(username.as_deref())
    .bind(req.layout.as_str())
    .bind(&file_name)
    .bind(&sha256)
    .bind(size as i64)
    .bind(req.dry_run)
    .bind(req.all_or_nothing)
    .bind(total_rows as i64)
    .bind(now)
    .fetch_one(c)
    .await)?;
    tx.commit().await?;
    Ok(Prepared {
        id,
        layout: req.layout,
        file: req.file.to_path_buf(),
        file_type,
        file_name,
        sha256,
        size,
        user_id,
        username,
        actor: actor.clone(),
        dry_run: req.dry_run,
        all_or_nothing: req.all_or_nothing,
        total_rows,
        started_at: now,
    })
}

/// What a run gathered.
#[derive(Default)]
struct Tally {
    counts: Counts,
    problems: Vec<Problem>,
}

impl Tally {
    fn add(&mut self, o: &RowOutcome) {
        self.counts.add(o.outcome);
        if o.outcome == Outcome::Refused && self.problems.len() < FIRST_PROBLEMS {
            self.problems.push(Problem {
                sheet: o.at.sheet.to_string(),
                row: o.at.number,
                code: o.code.clone(),
                reason: o.reason.unwrap_or("refused").to_string(),
                message: o.message.clone(),
            });
        }
    }
}

fn now() -> Ts {
    Ts::new(time::OffsetDateTime::now_utc())
}

/// Runs a prepared import to its end and records how it ended; `live` shows its progress.
pub async fn execute(
    db: &Db,
    settings: &Settings,
    p: Prepared,
    live: Arc<Live>,
) -> Result<Summary> {
    live.total_rows.store(p.total_rows, Ordering::Relaxed);
    let mut tally = Tally::default();
    let ran = run_batches(db, settings, &p, &live, &mut tally).await;
    let (state, error) = match &ran {
        Ok(true) => ("done", None),
        Ok(false) => ("rolled_back", None),
        Err(e) => ("failed", Some(plain(e))),
    };
    let finished = now();
    let problems = serde_json::to_string(&tally.problems).ok();
    let rows_done = live.rows_done.load(Ordering::Relaxed);
    let mut tx = db.begin().await?;
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE imports SET state = $2, rows_done = $3, created = $4, linked = $5,
                already_there = $6, refused = $7, problems = $8, error = $9,
                updated_at = $10, finished_at = $10, total_rows = $11
         WHERE id = $1"
    )
    .bind(p.id)
    .bind(state)
    .bind(rows_done as i64)
    .bind(tally.counts.created as i64)
    .bind(tally.counts.linked as i64)
    .bind(tally.counts.already_there as i64)
    .bind(tally.counts.refused as i64)
    .bind(problems.as_deref())
    .bind(error.as_deref())
    .bind(finished)
    // The rows read are the file's true size once it is read to its end.
    .bind(if ran.is_ok() {
        rows_done as i64
    } else {
        p.total_rows as i64
    })
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    audit::record(
        &mut tx,
        &p.actor,
        finished,
        Entry {
            action: if p.dry_run {
                "import_preview"
            } else {
                "import"
            },
            entity: "import",
            code: Some(&p.id.to_string()),
            before: None,
            after: Some(json!({
                "file_name": p.file_name, "sha256": p.sha256, "kind": p.layout.as_str(),
                "dry_run": p.dry_run, "all_or_nothing": p.all_or_nothing, "state": state,
                "created": tally.counts.created, "linked": tally.counts.linked,
                "already_there": tally.counts.already_there, "refused": tally.counts.refused,
            })),
        },
    )
    .await?;
    tx.commit().await?;
    ran?;
    get_summary(db, p.id, Some(&live)).await
}

fn plain(e: &Error) -> String {
    match e {
        Error::Refused { message, .. } => message.clone(),
        other => {
            tracing::error!(error = %other, "an import failed");
            "Something went wrong on the server; the rows applied so far stay. Run the import again.".into()
        }
    }
}

/// Reads, plans and applies the whole file. Answers false when an
/// all-or-nothing import was rolled back because rows were refused.
async fn run_batches(
    db: &Db,
    settings: &Settings,
    p: &Prepared,
    live: &Arc<Live>,
    tally: &mut Tally,
) -> Result<bool> {
    let (row_tx, mut row_rx) = tokio::sync::mpsc::channel::<Vec<plan::Row>>(8);
    let file = p.file.clone();
    let file_type = p.file_type;
    let reader = tokio::task::spawn_blocking(move || {
        read::read(&file, file_type, |rows| row_tx.blocking_send(rows).is_ok())
    });

    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<RowOutcome>>(8);
    let dir = settings.import_dir.clone();
    let id = p.id;
    let writer = tokio::task::spawn_blocking(move || {
        let mut files = report::ResultFiles::create(&dir, id)?;
        while let Some(rows) = out_rx.blocking_recv() {
            for o in &rows {
                files.add(o)?;
            }
        }
        Ok::<_, std::io::Error>(files)
    });

    let one_tx = p.dry_run || p.all_or_nothing;
    let ctx = apply::Context {
        formats: &settings.formats,
        import_id: p.id,
        user_id: p.user_id,
    };
    let mut planner = Planner::new(p.layout, settings.formats.clone());
    let mut ops: Vec<Op> = Vec::with_capacity(BATCH_ROWS + 64);
    let mut whole = match one_tx {
        true => Some(begin(db, p.id).await?),
        false => None,
    };
    let mut lanes = Lanes {
        max: match db.backend() {
            crate::db::Backend::Postgres => PG_LANES,
            crate::db::Backend::Sqlite => 1,
        },
        db: db.clone(),
        formats: Arc::new(settings.formats.clone()),
        import_id: p.id,
        user_id: p.user_id,
        flying: std::collections::VecDeque::new(),
    };
    let mut failed: Option<Error> = None;
    let mut finished = false;
    while !finished {
        match row_rx.recv().await {
            Some(rows) => {
                let n = rows.len() as u64;
                for row in rows {
                    match planner.push(row) {
                        Ok(group) => ops.extend(group),
                        Err(e) => {
                            failed = Some(Error::bad_input("bad_header", e.0));
                            break;
                        }
                    }
                }
                if failed.is_some() {
                    break;
                }
                let done = live.rows_done.fetch_add(n, Ordering::Relaxed) + n;
                if ops.len() >= BATCH_ROWS {
                    let batch = std::mem::take(&mut ops);
                    let applied = match &mut whole {
                        Some(tx) => apply_in(tx, &ctx, &batch, tally, &out_tx).await,
                        None => lanes.launch(batch, done, tally, &out_tx).await,
                    };
                    if let Err(e) = applied {
                        failed = Some(e);
                        break;
                    }
                }
            }
            None => {
                finished = true;
                ops.extend(planner.finish());
                let batch = std::mem::take(&mut ops);
                let done = live.rows_done.load(Ordering::Relaxed);
                let applied = match &mut whole {
                    Some(tx) => apply_in(tx, &ctx, &batch, tally, &out_tx).await,
                    None => lanes.launch(batch, done, tally, &out_tx).await,
                };
                if let Err(e) = applied {
                    failed = Some(e);
                }
            }
        }
    }
    // Batches still in flight end either way: what they did is committed.
    if let Err(e) = lanes.land_all(tally, &out_tx).await {
        failed.get_or_insert(e);
    }
    drop(row_rx);
    let read_result = reader
        .await
        .map_err(|e| Error::Internal(format!("the file reader stopped: {e}")))?;
    if failed.is_none() {
        if let Err(e) = read_result {
            failed = Some(unreadable(e));
        }
    }
    drop(out_tx);
    let files = writer
        .await
        .map_err(|e| Error::Internal(format!("the result writer stopped: {e}")))?;

    let mut applied = true;
    if let Some(tx) = whole {
        if p.dry_run || failed.is_some() || tally.counts.refused > 0 {
            drop(tx); // rolled back
            applied = p.dry_run && failed.is_none();
        } else {
            tx.commit().await?;
        }
    }
    let summary_for_file = Summary {
        id: p.id,
        kind: p.layout,
        file_name: p.file_name.clone(),
        sha256: p.sha256.clone(),
        size_bytes: p.size as i64,
        by: p.username.clone(),
        dry_run: p.dry_run,
        all_or_nothing: p.all_or_nothing,
        state: match (&failed, applied) {
            (Some(_), _) => "failed".into(),
            (None, true) => "done".into(),
            (None, false) => "rolled back: rows were refused, so nothing was applied".into(),
        },
        rows: tally.counts.rows(),
        rows_done: live.rows_done.load(Ordering::Relaxed),
        total_rows: p.total_rows,
        rows_per_sec: live.rows_per_sec(),
        counts: tally.counts,
        problems: Vec::new(),
        error: failed.as_ref().map(plain),
        started_at: p.started_at.time(),
        finished_at: Some(now().time()),
    };
    match files {
        Ok(files) => {
            let done = tokio::task::spawn_blocking(move || files.finish(&summary_for_file))
                .await
                .map_err(|e| Error::Internal(format!("the result writer stopped: {e}")))?;
            if let Err(e) = done {
                tracing::warn!(error = %e, import = p.id, "could not write the import's result files");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, import = p.id, "could not write the import's result files")
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(applied),
    }
}

/// Batches applied at once on PostgreSQL, each in its own transaction and
/// connection. Its time goes mostly to checks inside the database (unique
/// codes, the links' foreign keys), so two batches nearly double the pace.
/// SQLite has one writer: one batch at a time.
const PG_LANES: usize = 2;

/// Applies one batch in the import's one transaction (preview, all-or-nothing).
async fn apply_in(
    tx: &mut crate::db::Tx,
    ctx: &apply::Context<'_>,
    batch: &[Op],
    tally: &mut Tally,
    out: &tokio::sync::mpsc::Sender<Vec<RowOutcome>>,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = apply::apply(tx, ctx, batch, now()).await?;
    hand_on(outcomes, tally, out).await
}

async fn hand_on(
    outcomes: Vec<RowOutcome>,
    tally: &mut Tally,
    out: &tokio::sync::mpsc::Sender<Vec<RowOutcome>>,
) -> Result<()> {
    for o in &outcomes {
        tally.add(o);
    }
    out.send(outcomes)
        .await
        .map_err(|_| Error::Internal("the result writer stopped".into()))
}

type Flying = tokio::task::JoinHandle<Result<Vec<RowOutcome>>>;

/// Batches applied in their own transactions, a few at a time. A batch
/// starts only when it names no code of a batch still in flight, so each
/// row meets the state the rows above it left, as in one batch after another;
/// outcomes are handed on in file order.
struct Lanes {
    max: usize,
    db: Db,
    formats: Arc<traitortrack_protocol::Formats>,
    import_id: i64,
    user_id: Option<i64>,
    flying: std::collections::VecDeque<(std::collections::HashSet<String>, Flying)>,
}

/// Every bag and bill code a batch names (bills apart from bags).
fn codes_of(batch: &[Op]) -> std::collections::HashSet<String> {
    let mut codes = std::collections::HashSet::with_capacity(batch.len() * 2);
    for op in batch {
        match op {
            Op::Refuse { .. } => {}
            Op::Bag { code, .. } => {
                codes.insert(code.clone());
            }
            Op::Link { child, parent, .. } => {
                codes.insert(child.clone());
                codes.insert(parent.clone());
            }
            Op::Bill { bill, .. } => {
                codes.insert(format!("bill {}", bill.code));
            }
            Op::BillRow { code, .. } => {
                codes.insert(format!("bill {code}"));
            }
            Op::OnBill { parent, bill, .. } => {
                codes.insert(parent.clone());
                codes.insert(format!("bill {bill}"));
            }
        }
    }
    codes
}

impl Lanes {
    async fn launch(
        &mut self,
        batch: Vec<Op>,
        rows_done: u64,
        tally: &mut Tally,
        out: &tokio::sync::mpsc::Sender<Vec<RowOutcome>>,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let codes = codes_of(&batch);
        while self.flying.len() >= self.max
            || self.flying.iter().any(|(c, _)| !c.is_disjoint(&codes))
        {
            self.land_one(tally, out).await?;
        }
        let (db, formats, import_id, user_id) = (
            self.db.clone(),
            self.formats.clone(),
            self.import_id,
            self.user_id,
        );
        let task = tokio::spawn(async move {
            let ctx = apply::Context {
                formats: &formats,
                import_id,
                user_id,
            };
            let mut tx = begin(&db, import_id).await?;
            let outcomes = apply::apply(&mut tx, &ctx, &batch, now()).await?;
            let mut counts = Counts::default();
            outcomes.iter().for_each(|o| counts.add(o.outcome));
            record_counts(&mut tx, import_id, rows_done, &counts).await?;
            tx.commit().await?;
            Ok(outcomes)
        });
        self.flying.push_back((codes, task));
        Ok(())
    }

    async fn land_one(
        &mut self,
        tally: &mut Tally,
        out: &tokio::sync::mpsc::Sender<Vec<RowOutcome>>,
    ) -> Result<()> {
        let Some((_, task)) = self.flying.pop_front() else {
            return Ok(());
        };
        let outcomes = task
            .await
            .map_err(|e| Error::Internal(format!("an import batch stopped: {e}")))??;
        hand_on(outcomes, tally, out).await
    }

    /// Waits for every batch in flight; the first failure is answered.
    async fn land_all(
        &mut self,
        tally: &mut Tally,
        out: &tokio::sync::mpsc::Sender<Vec<RowOutcome>>,
    ) -> Result<()> {
        let mut first = Ok(());
        while !self.flying.is_empty() {
            if let Err(e) = self.land_one(tally, out).await {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

/// Starts a transaction with a write, so that on SQLite it holds the write
/// lock from its first statement (waiting its turn behind another process,
/// such as a server on the same file) instead of failing to upgrade a read
/// later on.
async fn begin(db: &Db, id: i64) -> Result<crate::db::Tx> {
    let mut tx = db.begin().await?;
    if let crate::db::On::Sqlite(c) = tx.conn() {
        sqlx::query("UPDATE imports SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now())
            .execute(c)
            .await?;
    }
    Ok(tx)
}

/// Adds a batch's outcomes to its import's counts, in the batch's transaction.
async fn record_counts(
    tx: &mut crate::db::Tx,
    id: i64,
    rows_done: u64,
    counts: &Counts,
) -> Result<()> {
    on!(tx.conn(), |c| sqlx::query(
        "UPDATE imports SET created = created + $2, linked = linked + $3,
                already_there = already_there + $4, refused = refused + $5, updated_at = $6,
                rows_done = CASE WHEN rows_done < $7 THEN $7 ELSE rows_done END
         WHERE id = $1"
    )
    .bind(id)
    .bind(counts.created as i64)
    .bind(counts.linked as i64)
    .bind(counts.already_there as i64)
    .bind(counts.refused as i64)
    .bind(now())
    .bind(rows_done as i64)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

const COLUMNS: &str =
    "id, kind, file_name, sha256, size_bytes, username, dry_run, all_or_nothing, \
    state, total_rows, rows_done, created, linked, already_there, refused, problems, error, \
    started_at, updated_at, finished_at, user_id";

#[derive(sqlx::FromRow)]
struct Stored {
    id: i64,
    kind: String,
    file_name: String,
    sha256: String,
    size_bytes: i64,
    username: Option<String>,
    dry_run: bool,
    all_or_nothing: bool,
    state: String,
    total_rows: i64,
    rows_done: i64,
    created: i64,
    linked: i64,
    already_there: i64,
    refused: i64,
    problems: Option<String>,
    error: Option<String>,
    started_at: Ts,
    updated_at: Ts,
    finished_at: Option<Ts>,
    user_id: Option<i64>,
}

fn summary_of(s: Stored, live: Option<&Live>) -> Summary {
    let counts = Counts {
        created: s.created.max(0) as u64,
        linked: s.linked.max(0) as u64,
        already_there: s.already_there.max(0) as u64,
        refused: s.refused.max(0) as u64,
    };
    let mut rows_done = s.rows_done.max(0) as u64;
    let end = s.finished_at.unwrap_or(s.updated_at);
    let secs = (end.micros() - s.started_at.micros()) as f64 / 1e6;
    let mut rows_per_sec = if secs > 0.0 {
        rows_done as f64 / secs
    } else {
        0.0
    };
    if let (Some(live), "running") = (live, s.state.as_str()) {
        rows_done = live.rows_done.load(Ordering::Relaxed);
        rows_per_sec = live.rows_per_sec();
    }
    Summary {
        id: s.id,
        kind: Layout::parse(&s.kind).unwrap_or(Layout::Bags),
        file_name: s.file_name,
        sha256: s.sha256,
        size_bytes: s.size_bytes,
        by: s.username,
        dry_run: s.dry_run,
        all_or_nothing: s.all_or_nothing,
        state: s.state,
        rows: counts.rows(),
        rows_done,
        total_rows: s.total_rows.max(0) as u64,
        rows_per_sec: (rows_per_sec * 10.0).round() / 10.0,
        counts,
        problems: s
            .problems
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
        error: s.error,
        started_at: s.started_at.time(),
        finished_at: s.finished_at.map(Ts::time),
    }
}

fn not_found(id: i64) -> Error {
    Error::not_found("import_not_found", format!("There is no import {id}."))
}

async fn stored(db: &Db, id: i64) -> Result<Stored> {
    let sql = format!("SELECT {COLUMNS} FROM imports WHERE id = $1");
    let row: Option<Stored> = on!(db.reader(), |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    row.ok_or_else(|| not_found(id))
}

async fn get_summary(db: &Db, id: i64, live: Option<&Live>) -> Result<Summary> {
    Ok(summary_of(stored(db, id).await?, live))
}

/// One import with its progress (admins).
pub async fn get(db: &Db, running: &Running, user: &User, id: i64) -> Result<Summary> {
    user.require(&[Role::Admin], "see imports")?;
    let live = running.get(id);
    get_summary(db, id, live.as_deref()).await
}

/// The latest imports, newest first (admins).
pub async fn list(
    db: &Db,
    running: &Running,
    user: &User,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Summary>> {
    user.require(&[Role::Admin], "see imports")?;
    let limit = i64::from(limit.clamp(1, 200));
    let sql = format!("SELECT {COLUMNS} FROM imports WHERE id < $1 ORDER BY id DESC LIMIT $2");
    let rows: Vec<Stored> = on!(db.reader(), |c| sqlx::query_as(&sql)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(c)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|s| {
            let live = running.get(s.id);
            summary_of(s, live.as_deref())
        })
        .collect())
}

/// The result file of an import, for the admin who ran it (any admin for
/// imports run from the command line without `--as`).
pub async fn result_file(
    db: &Db,
    settings: &Settings,
    user: &User,
    id: i64,
    xlsx: bool,
) -> Result<PathBuf> {
    user.require(&[Role::Admin], "download import results")?;
    let s = stored(db, id).await?;
    if s.user_id.is_some_and(|u| u != user.id) {
        return Err(Error::forbidden(
            "not_your_import",
            format!(
                "Import {id} was run by {}: only they can download its result.",
                s.username.as_deref().unwrap_or("another admin")
            ),
        ));
    }
    if s.state == "running" {
        return Err(Error::conflict(
            "import_running",
            format!("Import {id} is still running; its result is ready when it ends."),
        ));
    }
    let (csv, xlsx_path) = report::paths(&settings.import_dir, id);
    let path = if xlsx { xlsx_path } else { csv };
    if !path.is_file() {
        return Err(Error::not_found(
            "result_not_found",
            format!("The result file of import {id} is not on this server any more."),
        ));
    }
    Ok(path)
}

/// A mark an import left on a bag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportMark {
    pub import_id: i64,
    /// "created" (the import made the bag) or "linked" (it put the child in `parent`).
    pub what: String,
    pub parent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
}

/// What imports did to a bag, for its history ("imported by import N").
pub async fn history_of(db: &Db, code: &str) -> Result<Vec<ImportMark>> {
    let code = traitortrack_protocol::normalize(code)?;
    let rows: Vec<(i64, String, Option<String>, Ts)> = on!(db.reader(), |c| sqlx::query_as(
        "SELECT b.import_id, 'created', NULL, b.created_at FROM bags b
          WHERE b.code = $1 AND b.import_id IS NOT NULL
         UNION ALL
         SELECT l.import_id, 'linked', p.code, l.linked_at FROM links l
           JOIN bags c ON c.id = l.child_id JOIN bags p ON p.id = l.parent_id
          WHERE c.code = $1 AND l.import_id IS NOT NULL"
    )
    .bind(&code)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(import_id, what, parent, at)| ImportMark {
            import_id,
            what,
            parent,
            at: at.time(),
        })
        .collect())
}
