//! Freeing large values off the critical path, or not at all when the process is about to end.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether large values are left to the operating system at exit ([`leave_to_exit`]).
static LEFT_TO_EXIT: AtomicBool = AtomicBool::new(false);

/// For a process that ends once its one command is done (the `envfence` binary): the large
/// values handed to [`drop_in_background`] are then never freed one allocation at a time;
/// the operating system takes the whole address space back at exit. Freeing the worklist's
/// caches, the parse trees and the report is millions of `free` calls that compete with the
/// scan for the cores and malloc's locks: at 5,000 apps, 0.1 s of 1.5 s, for 4 MiB of peak
/// memory (and 14 MiB less in a diff-aware scan, whose sides' threads no longer free into
/// each other's heaps). A library user that runs many scans keeps the default: values are
/// freed, on a thread of their own.
pub fn leave_to_exit() {
    LEFT_TO_EXIT.store(true, Ordering::Relaxed);
}

/// Frees `value` here, or after [`leave_to_exit`] leaves it to the operating system: for a
/// value that borrows (no thread can take it) and owns nothing but memory, such as the
/// topology's index of a large repository's files and folders.
pub fn let_go<T>(value: T) {
    if LEFT_TO_EXIT.load(Ordering::Relaxed) {
        std::mem::forget(value);
    }
}

/// Frees `value` on a thread of its own: the parse trees, placements and caches of a large
/// repository are millions of allocations, and the report need not wait for them (issue 13
/// profile: about 6% of a scan was dropping). If no thread can be started, frees it here.
/// After [`leave_to_exit`], leaves it to the operating system instead.
///
/// Only for values that own nothing but memory: a value whose drop does more (a temporary
/// folder, a child process, a file to flush) must be dropped where it is.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    if LEFT_TO_EXIT.load(Ordering::Relaxed) {
        std::mem::forget(value);
        return;
    }
    let _ = std::thread::Builder::new()
        .name("envfence-drop".into())
        .spawn(move || drop(value));
}
