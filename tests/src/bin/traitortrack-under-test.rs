//! The `traitortrack` command line, built as part of this test package so that
//! `cargo test` always builds it fresh for the tests that start server processes
//! (`CARGO_BIN_EXE_traitortrack-under-test`). Same code as the real binary.

fn main() -> std::process::ExitCode {
    traitortrack_server::cli::main()
}
