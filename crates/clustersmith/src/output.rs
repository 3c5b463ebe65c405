//! Writing to stdout. A closed pipe (`clustersmith plan | head`) ends the process quietly with
//! exit 0, the Unix convention that ripgrep and ruff follow, instead of panicking.

use std::fmt;
use std::io::{self, Write as _};

pub fn write(args: fmt::Arguments<'_>) {
    if let Err(err) = io::stdout().lock().write_fmt(args) {
        if err.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: failed to write to stdout: {err}");
        std::process::exit(i32::from(crate::exit::ERROR));
    }
}

/// `print!` that handles a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

/// `println!` that handles a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};
