//! The `traitortrack` binary.

fn main() -> std::process::ExitCode {
    traitortrack_server::cli::main()
}
