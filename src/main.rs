//! The `envfence` command: argument parsing and printing around the library.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;
use std::sync::Mutex;

use envfence::documents::guard;

/// The first panic outside the per-file guard, with where it happened, for the one-line error.
static FIRST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    // A panic is a bug, but it must not end in a backtrace and exit code 101: inside the
    // per-file guard it becomes that file's `invalid-yaml` finding (silently here); anywhere
    // else the command stops with one line and exit code 2.
    std::panic::set_hook(Box::new(|info| {
        if guard::in_guarded_read() {
            return;
        }
        let mut message = guard::panic_message(info.payload());
        if let Some(at) = info.location() {
            message.push_str(&format!(" at {}:{}", at.file(), at.line()));
        }
        if let Ok(mut first) = FIRST_PANIC.lock() {
            first.get_or_insert(message);
        }
    }));
    match std::panic::catch_unwind(cli::main) {
        Ok(code) => code,
        Err(payload) => {
            let message = FIRST_PANIC
                .lock()
                .ok()
                .and_then(|mut first| first.take())
                .unwrap_or_else(|| guard::panic_message(payload.as_ref()));
            eprintln!("envfence: error: internal error: {message} (a bug: please report it)");
            ExitCode::from(2)
        }
    }
}
