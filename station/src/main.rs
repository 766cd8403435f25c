//! The TraitorTrack station app: a Tauri window over the station core.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod shell;

use std::sync::Arc;

use tauri::Manager;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRAITORTRACK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let app = tauri::Builder::default()
        .setup(|app| {
            // TRAITORTRACK_STATION_DATA moves the station's folder (tests, shared PCs).
            let data_dir = match std::env::var_os("TRAITORTRACK_STATION_DATA") {
                Some(dir) => dir.into(),
                None => app.path().app_data_dir()?,
            };
            let shell = Arc::new(shell::Shell::new(data_dir));
            app.manage(Arc::clone(&shell));
            let handle = app.handle().clone();
            tauri::async_runtime::block_on(async move {
                shell.start_scanner(&handle).await;
                if let Err(e) = shell.start_station(&handle).await {
                    tracing::error!(?e, "the station could not start");
                }
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            shell::station_state,
            shell::setup,
            shell::login,
            shell::logout,
            shell::settings_unlock,
            shell::wedge_key,
            shell::scan,
            shell::undo,
            shell::close_parent,
            shell::needs_attention,
            shell::acknowledge,
            shell::bill_open,
            shell::bill_create,
            shell::bill_scan,
            shell::bill_remove,
            shell::bill_close,
            shell::devices,
            shell::choose_scanner,
            shell::set_scan_mode,
            shell::set_language,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = app {
        eprintln!("error: the station app stopped: {e}");
        std::process::exit(1);
    }
}
