//! Writing to stdout and stderr.
//!
//! A closed pipe or a terminal that went away (`clustersmith apply … 2>&1 | head -3`, an SSH
//! session that dropped) never ends a run or panics it: a run may be in the middle of moving
//! slots, and stopping there would leave them open. The first failed write marks that stream
//! closed; everything later meant for it is dropped, and the run finishes its work and exits
//! with its usual code.
//!
//! With `--format json`, stderr carries only JSON lines: progress events as they are, and any
//! human message as `{"event":"message","text":…}`.

use std::fmt;
use std::io::{self, IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
static JSON_STDERR: AtomicBool = AtomicBool::new(false);

/// From now on stderr carries JSON lines only.
pub fn use_json_stderr() {
    JSON_STDERR.store(true, Ordering::Relaxed);
}

pub fn json_stderr() -> bool {
    JSON_STDERR.load(Ordering::Relaxed)
}

/// Colour only on a terminal, and never with `NO_COLOR` set (https://no-color.org).
pub fn stderr_colour() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn write(args: fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if io::stdout().lock().write_fmt(args).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

fn write_stderr(line: &str) {
    if STDERR_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stderr = io::stderr().lock();
    if stderr
        .write_all(line.as_bytes())
        .and_then(|()| stderr.write_all(b"\n"))
        .is_err()
    {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// A human line on stderr (wrapped as a JSON message event in JSON mode).
pub fn message(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    if json_stderr() {
        let event = crate::render::json::Event::Message { text: &text };
        write_stderr(&crate::render::json::to_text(&event));
    } else {
        write_stderr(&text);
    }
}

/// A progress event (one JSON line) on stderr, in JSON mode only.
pub fn event(line: &str) {
    if json_stderr() {
        write_stderr(line);
    }
}

/// A writer for `tracing`'s output that follows the same rules as the rest of stderr.
pub struct TracingWriter;

impl io::Write for TracingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !STDERR_CLOSED.load(Ordering::Relaxed) && io::stderr().lock().write_all(buf).is_err() {
            STDERR_CLOSED.store(true, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `print!` that survives a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

/// `println!` that survives a closed stdout.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that survives a closed stderr and keeps stderr JSON in JSON mode.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::message(format_args!($($arg)*)) };
}

pub(crate) use {errln, out, outln};
