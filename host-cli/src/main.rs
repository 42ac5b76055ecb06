//! `nmm`: thin entry point; every error becomes a message on stderr and a non-zero exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match nmm_cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<clap::Error>() {
            // Help and version go to stdout with code 0; usage errors exit with 2.
            Some(c) => {
                let _ = c.print();
                ExitCode::from(c.exit_code() as u8)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
