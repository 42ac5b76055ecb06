//! `nmm`: the command line over the `nmm` library. `main` is the only place that turns errors
//! into exit codes: 0 on success, 2 for usage errors (clap), 1 for every other error, printed
//! as `error: what: why` on stderr.

mod args;
mod cmd;
mod figures_infer;
mod figures_train;
mod models;
mod plot;
mod progress;

use std::io::Write;
use std::process::ExitCode;

/// `println!` that ignores a closed stdout (`nmm ... | head`): the run goes on and writes its
/// files; only the printed summary is lost.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use say;

/// `eprintln!` that ignores a closed stderr (warnings and notes beside the output).
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
pub(crate) use note;

/// `print!` that ignores a closed stdout, as [`say!`].
macro_rules! say_part {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use say_part;

fn main() -> ExitCode {
    match args::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<clap::Error>() {
            // Help and version go to stdout with code 0; usage errors exit with 2.
            Some(c) => {
                let _ = c.print();
                ExitCode::from(c.exit_code() as u8)
            }
            None => {
                let _ = writeln!(std::io::stderr(), "error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
