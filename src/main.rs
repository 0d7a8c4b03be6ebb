use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = costcast::cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(costcast::cli::run(cli));
    // Outside the runtime's async code, yet before it is dropped: the last export runs on it.
    costcast::telemetry::shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.code())
        }
    }
}
