//! The second line of defence around reading one file: a panic in the YAML layer becomes a
//! problem of that file, and the scan goes on.
//!
//! The binary's panic hook asks [`in_guarded_read`] and stays silent inside the guard, so
//! a caught panic prints no message and no backtrace; the file gets an `invalid-yaml` finding
//! ("the YAML reader failed: …") instead.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs inside [`guarded`]: a panic here is caught and reported as a
/// problem of the file being read.
pub fn in_guarded_read() -> bool {
    GUARDED.with(Cell::get)
}

/// Runs `read`, turning a panic into `Err` with the panic's message (one line, shortened).
pub fn guarded<T>(read: impl FnOnce() -> T) -> Result<T, String> {
    caught(read).map_err(|payload| panic_message(payload.as_ref()))
}

/// Runs `read` silently guarded, turning a panic into `Err` with its payload (which
/// `std::panic::resume_unwind` can raise again without a message).
pub fn caught<T>(read: impl FnOnce() -> T) -> Result<T, Box<dyn std::any::Any + Send>> {
    let outer = GUARDED.with(|g| g.replace(true));
    // Nothing `read` touches outlives a panic: the caller drops every partial result.
    let result = catch_unwind(AssertUnwindSafe(read));
    GUARDED.with(|g| g.set(outer));
    result
}

/// The text of a panic payload, on one line and at most 200 characters.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned());
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    one_line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_the_flag_is_restored() {
        assert!(!in_guarded_read());
        let caught = guarded(|| -> u32 { panic!("unexpected end\nof input") });
        assert_eq!(caught, Err("unexpected end of input".to_owned()));
        assert!(!in_guarded_read());
        assert_eq!(guarded(|| 7), Ok(7));
    }
}
