//! The `headless-dns` binary: parse the configuration, set up logging, run.

use std::process::ExitCode;

use headless_dns::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// jemalloc rather than the system allocator: the index and the reconciler hold millions of small
/// allocations at cluster scale, and jemalloc's size classes waste less per allocation and return
/// freed memory to the system (measured with `cargo bench --bench scale`; README, "Benchmarks").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit status for a bad flag, key or value (as clap uses for bad flags).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    // `headless-dns explain ...`: a client of a running server's debug listener.
    if std::env::args_os().nth(1).is_some_and(|a| a == "explain") {
        use clap::Parser;
        let args = headless_dns::debug::ExplainArgs::parse_from(std::env::args_os().skip(1));
        return match headless_dns::debug::cli(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("headless-dns explain: error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load() {
        Ok(c) => c,
        Err(error) => {
            eprintln!("headless-dns: error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Per-query logs stay at debug: hickory-server logs every request at info, so it is held to warn.
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,hickory_server=warn,hickory_proto=warn,hickory_net=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format() {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("headless-dns: error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("headless-dns: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    headless_dns::run(config).await?;
    Ok(())
}
