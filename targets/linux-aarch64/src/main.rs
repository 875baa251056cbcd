//! `amps-telemetry-gateway URI [options]`: see the library docs and `--help`.

use std::process::ExitCode;

use amps_telemetry_gateway::{Args, ArgsError, USAGE, run};

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "edge".to_string())
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1), &hostname()) {
        Ok(a) => a,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("amps-telemetry-gateway: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!(
        "gateway: publishing {} samples to {} at {} Hz as {} (store {})",
        args.count,
        args.topic,
        args.rate,
        args.name,
        args.store.display()
    );
    match run(&args) {
        Ok(s) if s.all_persisted() => {
            println!(
                "gateway: published {}, all persisted ({} recovered from the store, {} disconnects)",
                s.published, s.recovered, s.disconnects
            );
            ExitCode::SUCCESS
        }
        Ok(s) => {
            eprintln!(
                "gateway: published {}, but {} unpersisted and {} refused",
                s.published, s.unpersisted, s.failed_writes
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
