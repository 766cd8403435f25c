//! The `traitortrack` command line: serve, migrate, add users and stations,
//! verify the audit log, and export.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::audit::Actor;
use crate::config::{redacted_url, Config, Settings};
use crate::db::{Db, Ts};
use crate::users::{self, NewUser};
use crate::{areas, export, passwords, stations, AppState};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use traitortrack_protocol::{BagKind, BillStatus, Role};

#[derive(Parser)]
#[command(
    name = "traitortrack",
    version,
    about = "TraitorTrack bag tracking server"
)]
struct Cli {
    /// A TOML settings file (see the README for every setting).
    #[arg(long, global = true, env = "TRAITORTRACK_CONFIG")]
    config: Option<PathBuf>,
    /// The database: postgres://… or sqlite://… (default: SQLite in ./traitortrack-data/).
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Bring the database schema up to date and stop.
    Migrate,
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage stations.
    Station {
        #[command(subcommand)]
        command: StationCommand,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Export bags, bills, links, audit, activity (CSV or XLSX) or epcis (JSON-LD) to a file.
    Export(Box<ExportArgs>),
    /// Import a sheet (CSV, XLSX or XLSM). Exit code 0: every row went in (or
    /// would, with --dry-run); 1: some rows were refused (see the result file);
    /// 2: the file could not be imported at all (unreadable, too large, wrong
    /// columns, no database).
    Import(ImportArgs),
}

#[derive(clap::Args)]
struct ExportArgs {
    /// bags, bills, links, audit, activity or epcis.
    what: String,
    /// The file to write; its extension (.csv, .xlsx, .jsonld) gives the format.
    #[arg(long)]
    out: PathBuf,
    /// First day, YYYY-MM-DD (in the warehouse's time).
    #[arg(long)]
    from: Option<String>,
    /// Last day, YYYY-MM-DD, included.
    #[arg(long)]
    to: Option<String>,
    /// Bags: a code or the start of one.
    #[arg(long)]
    search: Option<String>,
    /// Bags: parent or child.
    #[arg(long)]
    kind: Option<String>,
    /// Bags: a dispatch area.
    #[arg(long)]
    area: Option<String>,
    /// Bags: only full parents (true) or parents not yet full (false).
    #[arg(long)]
    complete: Option<bool>,
    /// Bags: only bags on a bill (true) or not on one (false).
    #[arg(long)]
    billed: Option<bool>,
    /// Bills: new, in_progress, ready or closed.
    #[arg(long)]
    status: Option<String>,
    /// Bills: part of the code.
    #[arg(long)]
    code: Option<String>,
    /// Bills: part of the destination.
    #[arg(long)]
    destination: Option<String>,
    /// Bills: the username of the biller who created them.
    #[arg(long)]
    biller: Option<String>,
    /// Audit: a username.
    #[arg(long)]
    actor: Option<String>,
    /// Audit: an action such as link.
    #[arg(long)]
    action: Option<String>,
    /// Audit: an entity such as bag.
    #[arg(long)]
    entity: Option<String>,
    /// Audit: an entity's code.
    #[arg(long)]
    entity_code: Option<String>,
}

impl ExportArgs {
    fn filter(&self) -> anyhow::Result<export::Filter> {
        let kind = match self.kind.as_deref() {
            None => None,
            Some(k) => Some(
                BagKind::parse(&k.to_lowercase())
                    .with_context(|| format!("--kind must be parent or child, not {k:?}"))?,
            ),
        };
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(BillStatus::parse(&s.to_lowercase()).with_context(|| {
                format!("--status must be new, in_progress, ready or closed, not {s:?}")
            })?),
        };
        Ok(export::Filter {
            from: self.from.clone(),
            to: self.to.clone(),
            search: self.search.clone(),
            kind,
            date: None,
            area: self.area.clone(),
            complete: self.complete,
            billed: self.billed,
            status,
            code: self.code.clone(),
            destination: self.destination.clone(),
            biller: self.biller.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            entity: self.entity.clone(),
            entity_code: self.entity_code.clone(),
        })
    }
}

/// Writes one export to its file; answers the rows written.
async fn export_to_file(db: &Db, settings: &Settings, args: &ExportArgs) -> anyhow::Result<u64> {
    let kind = export::Kind::parse(&args.what)?;
    let extension = args
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    let format = export::Format::parse(extension)
        .with_context(|| format!("{} must end in .csv, .xlsx or .jsonld", args.out.display()))?;
    let filter = args.filter()?;
    let now = now();
    let request = export::Request::checked((kind, format), &filter, settings, now)?;
    export::record(db, &system_actor(), kind, format, &filter, now).await?;
    let out = export::file_out(&args.out)?;
    Ok(export::run(db, settings, request, &filter, now, out).await?)
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The file to import.
    file: PathBuf,
    /// The layout: bags, bills, child-parent or parent-bill.
    #[arg(long)]
    kind: String,
    /// Only show what would happen; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply nothing if any row is refused.
    #[arg(long)]
    all_or_nothing: bool,
    /// The admin the import is recorded under (default: the command line).
    #[arg(long = "as")]
    as_user: Option<String>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Seal pending rows, then check every row against the hash chain; exits 1 on a problem.
    Verify,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The password comes from --password-file, TRAITORTRACK_PASSWORD, or a prompt.
    Add {
        #[arg(long)]
        username: String,
        /// admin, biller or dispatcher.
        #[arg(long)]
        role: String,
        /// The dispatch area (needed for dispatchers); added when it does not exist yet.
        #[arg(long)]
        area: Option<String>,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StationCommand {
    /// Register a station and print its key (shown once).
    Add { name: String },
}

fn settings(cli: &Cli, listen: Option<&str>) -> anyhow::Result<Settings> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut config = Config::load(cli.config.as_deref(), &env)?;
    if let Some(db) = &cli.database {
        config.database_url = db.clone();
    }
    if let Some(listen) = listen {
        config.listen = listen.to_string();
    }
    Ok(config.validate()?)
}

async fn open(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(&settings.database_url, settings.max_connections)
        .await
        .with_context(|| format!("database {}", redacted_url(&settings.database_url)))?;
    db.migrate().await?;
    Ok(db)
}

fn now() -> Ts {
    Ts::new(time::OffsetDateTime::now_utc())
}

fn system_actor() -> Actor {
    Actor {
        username: Some("system".into()),
        ..Actor::default()
    }
}

/// Creates the first admin on an empty database and prints its password once.
async fn bootstrap_admin(db: &Db, settings: &Settings) -> anyhow::Result<()> {
    if users::count(db).await? > 0 {
        return Ok(());
    }
    let password = passwords::generate();
    let mut tx = db.begin().await?;
    let new = NewUser {
        username: "admin",
        password: &password,
        role: Role::Admin,
        dispatch_area: None,
        must_change_password: false,
    };
    users::create(&mut tx, settings, &system_actor(), new, now()).await?;
    tx.commit().await?;
    println!("Created the first admin account (shown once, write it down):");
    println!("  username: admin");
    println!("  password: {password}");
    if settings.require_admin_totp {
        println!(
            "Admins use two-step login: after logging in, set it up with an authenticator app \
             (POST /api/v1/auth/totp/enrol) before anything else."
        );
    }
    Ok(())
}

fn read_password(file: Option<&PathBuf>) -> anyhow::Result<String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the password file {}", path.display()))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Ok(pw) = std::env::var("TRAITORTRACK_PASSWORD") {
        return Ok(pw);
    }
    let first = rpassword::prompt_password("Password: ")
        .context("no password given: use --password-file, TRAITORTRACK_PASSWORD, or a terminal")?;
    let again = rpassword::prompt_password("Password again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve { listen } => {
            let settings = settings(&cli, listen.as_deref())?;
            let db = open(&settings).await?;
            bootstrap_admin(&db, &settings).await?;
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("cannot listen on {}", settings.listen))?;
            let addr = listener.local_addr()?;
            println!(
                "TraitorTrack is running on http://{addr} (API at http://{addr}/api/v1, database {})",
                redacted_url(&settings.database_url)
            );
            let state = AppState::new(db.clone(), settings);
            crate::serve(listener, state, shutdown_signal()).await?;
            db.close().await;
        }
        Command::Migrate => {
            let settings = settings(&cli, None)?;
            open(&settings).await?;
            println!("The database schema is up to date.");
        }
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    area,
                    password_file,
                },
        } => {
            let Some(role) = Role::parse(&role.to_lowercase()) else {
                bail!("the role must be admin, biller or dispatcher, not {role:?}");
            };
            let password = read_password(password_file.as_ref())?;
            let settings = settings(&cli, None)?;
            let db = open(&settings).await?;
            let mut tx = db.begin().await?;
            let mut added_area = None;
            if let Some(name) = area {
                let (area, added) = areas::ensure(&mut tx, &system_actor(), name, now()).await?;
                added_area = added.then_some(area.name);
            }
            let new = NewUser {
                username,
                password: &password,
                role,
                dispatch_area: area.as_deref(),
                must_change_password: false,
            };
            let user = users::create(&mut tx, &settings, &system_actor(), new, now()).await?;
            tx.commit().await?;
            if let Some(name) = added_area {
                println!("Added the dispatch area {name} (it did not exist yet).");
            }
            println!("Added {} ({}).", user.username, user.role.as_str());
        }
        Command::Station {
            command: StationCommand::Add { name },
        } => {
            let settings = settings(&cli, None)?;
            let db = open(&settings).await?;
            let mut tx = db.begin().await?;
            let created = stations::create(&mut tx, &system_actor(), name, now()).await?;
            tx.commit().await?;
            println!("Registered station {} (id {}).", created.name, created.id);
            println!("Station key (shown once; enter it in the station's settings):");
            println!("  {}", created.key);
        }
        Command::Export(args) => {
            let settings = settings(&cli, None)?;
            let db = open(&settings).await?;
            let started = std::time::Instant::now();
            let rows = export_to_file(&db, &settings, args).await?;
            db.close().await;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "Wrote {rows} rows to {} in {secs:.1} s ({:.0} rows/s).",
                args.out.display(),
                rows as f64 / secs.max(0.001)
            );
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let settings = settings(&cli, None)?;
            let db = open(&settings).await?;
            let found = crate::audit::verify(&db).await?;
            db.close().await;
            if let Some(problem) = found.first_problem {
                println!("The audit log is NOT intact: {problem}");
                if found.problems > 1 {
                    println!("{} problems in all.", found.problems);
                }
                bail!("the audit log failed verification");
            }
            println!(
                "The audit log is intact: {} rows checked.",
                found.rows_checked
            );
            if found.unsealed > 0 {
                println!(
                    "{} newer rows are still waiting to be sealed.",
                    found.unsealed
                );
            }
        }
        Command::Import(args) => {
            let code = import_file(&cli, args)
                .await
                .map_err(|e| anyhow::Error::new(Exit(2)).context(format!("{e:#}")))?;
            if code != 0 {
                return Err(Exit(code).into());
            }
        }
    }
    Ok(())
}

/// The exit code a command ends with when it is not 1.
#[derive(Debug, thiserror::Error)]
#[error("exit code {0}")]
struct Exit(u8);

/// `traitortrack import`: answers 0 when every row went in, 1 when rows were refused.
async fn import_file(cli: &Cli, args: &ImportArgs) -> anyhow::Result<u8> {
    use crate::import::{self, Layout, Live, Request};
    use std::io::IsTerminal;
    use std::sync::atomic::Ordering;

    let Some(layout) = Layout::parse(&args.kind) else {
        bail!(
            "--kind must be bags, bills, child-parent or parent-bill, not {:?}",
            args.kind
        );
    };
    let settings = settings(cli, None)?;
    let db = open(&settings).await?;
    let user = match &args.as_user {
        Some(name) => {
            let name = users::normalize_username(name)?;
            Some(
                users::find_by_username(db.reader(), &name)
                    .await?
                    .with_context(|| format!("there is no user {name}"))?,
            )
        }
        None => None,
    };
    let actor = match &user {
        Some(u) => system_actor().as_user(u.id, &u.username),
        None => system_actor(),
    };
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| args.file.display().to_string());
    let req = Request {
        layout,
        file: &args.file,
        file_name: &file_name,
        dry_run: args.dry_run,
        all_or_nothing: args.all_or_nothing,
    };
    let prepared = import::prepare(&db, &settings, user.as_ref(), &actor, req, now())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = prepared.id;
    let live = std::sync::Arc::new(Live::default());
    let shown = live.clone();
    let terminal = std::io::stderr().is_terminal();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let done = shown.rows_done.load(Ordering::Relaxed);
            let total = shown.total_rows.load(Ordering::Relaxed).max(done).max(1);
            let line = format!(
                "import {id}: {done} of {total} rows ({}%), {:.0} rows/s",
                done * 100 / total,
                shown.rows_per_sec()
            );
            if terminal {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
        }
    });
    let ran = import::execute(&db, &settings, prepared, live).await;
    ticker.abort();
    if terminal {
        eprintln!();
    }
    let summary = ran.map_err(|e| anyhow::anyhow!("{e}"))?;
    db.close().await;
    let c = summary.counts;
    println!(
        "Import {} of {} ({}{}): {}.",
        summary.id,
        summary.file_name,
        summary.kind.as_str(),
        if summary.dry_run {
            ", preview: nothing was changed"
        } else {
            ""
        },
        summary.state
    );
    println!(
        "{} rows: {} created, {} linked, {} already there, {} refused ({:.0} rows/s).",
        summary.rows, c.created, c.linked, c.already_there, c.refused, summary.rows_per_sec
    );
    for p in &summary.problems {
        println!("  {} row {}: {} ({})", p.sheet, p.row, p.message, p.reason);
    }
    let (csv, xlsx) = import::report::paths(&settings.import_dir, summary.id);
    println!("Result files: {} and {}", xlsx.display(), csv.display());
    Ok(if c.refused > 0 { 1 } else { 0 })
}

/// Runs the command line with the process's arguments; the binary's whole `main`.
pub fn main() -> std::process::ExitCode {
    main_from(std::env::args_os())
}

/// Runs the command line with these arguments (the first is the program's
/// name), so another binary can act as the server (`loadgen serve …`).
pub fn main_from<I, T>(args: I) -> std::process::ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAITORTRACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => {
                if e.chain().count() > 1 {
                    eprintln!("error: {e}");
                }
                std::process::ExitCode::from(*code)
            }
            None => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}
