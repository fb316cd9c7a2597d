//! The memory budget of Rego evaluation.
//!
//! regorus meters memory only through an allocator of its own that would replace the whole
//! scan's (and cost the scan memory: docs/decisions.md), and a policy can build a huge value in
//! one built-in call (`numbers.range(1, 1e9)`), which no time budget interrupts. So a watchdog
//! reads the resident memory of the process that evaluates.
//!
//! In a worker process (`worker.rs`) that is [`ProcessGuard`]: when the worker has grown by
//! more than its share of [`EVALUATION_MEMORY_BUDGET`] since it read the policies and the
//! topology (or by more than its size then, if that is larger), it ends with a distinct exit
//! code, and the parent cuts the evaluation it was running.
//!
//! Evaluated in-process (no worker executable: library unit tests), [`watch`] guards the
//! evaluations instead: when they have grown the process by more than the budget, or by more
//! than its own size when they began if that is larger, the process ends, since the evaluating
//! threads cannot be interrupted; the binary sets what to say first ([`on_exceeded`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// How much evaluating may grow resident memory: shared among a scan's worker processes
/// (`pool.rs`), or the whole process's when evaluating in-process; a process larger than its
/// share when it begins may double.
pub const EVALUATION_MEMORY_BUDGET: u64 = 1 << 30;

/// How often the watchdog looks.
const INTERVAL: Duration = Duration::from_millis(10);

static ON_EXCEEDED: OnceLock<fn(&str) -> !> = OnceLock::new();

/// What to do when the budget runs out, given the reason in one line: report it and end the
/// process. Without a handler the process ends with exit code 2 and says nothing.
pub fn on_exceeded(handler: fn(&str) -> !) {
    let _ = ON_EXCEEDED.set(handler);
}

/// Runs `evaluate` under the budget. Where the resident memory cannot be read (no `/proc`),
/// it runs unwatched.
pub fn watch<R>(evaluate: impl FnOnce() -> R) -> R {
    let Some(start) = resident_bytes() else {
        return evaluate();
    };
    let limit = start.saturating_add(EVALUATION_MEMORY_BUDGET.max(start));
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watchdog = scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                std::thread::park_timeout(INTERVAL);
                if resident_bytes().is_some_and(|now| now > limit) {
                    exceeded();
                }
            }
        });
        // Stops the watchdog however `evaluate` ends: a panic that left it running would
        // keep the scope, and the scan, waiting forever.
        struct Stop<'a>(&'a AtomicBool, &'a std::thread::Thread);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
                self.1.unpark();
            }
        }
        let _stop = Stop(&done, watchdog.thread());
        evaluate()
    })
}

/// The budget of a worker process (`worker.rs`): its resident memory may grow by `budget`
/// past its size at the last [`ProcessGuard::rebase`], or by that size if it is larger; past
/// that the process ends with `exit_code`. The same thread ends the process when its parent
/// has gone (its parent id changes), so that no worker outlives the scan that started it.
pub(super) struct ProcessGuard {
    limit: std::sync::Arc<AtomicU64>,
    budget: u64,
}

impl ProcessGuard {
    /// Starts watching; no limit holds until the first [`ProcessGuard::rebase`].
    pub(super) fn start(budget: u64, exit_code: i32) -> ProcessGuard {
        let limit = std::sync::Arc::new(AtomicU64::new(u64::MAX));
        let watched = std::sync::Arc::clone(&limit);
        #[cfg(unix)]
        let parent = std::os::unix::process::parent_id();
        let _ = std::thread::Builder::new()
            .name("envfence-rego-guard".into())
            .spawn(move || loop {
                std::thread::sleep(INTERVAL);
                #[cfg(unix)]
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(0);
                }
                if resident_bytes().is_some_and(|now| now > watched.load(Ordering::Relaxed)) {
                    std::process::exit(exit_code);
                }
            });
        ProcessGuard { limit, budget }
    }

    /// Ends the process as the watchdog would, if it is over its budget now: called after a
    /// long evaluation, so that the watchdog's next look does not blame the next one.
    pub(super) fn check(&self, exit_code: i32) {
        if resident_bytes().is_some_and(|now| now > self.limit.load(Ordering::Relaxed)) {
            std::process::exit(exit_code);
        }
    }

    /// The process's present size becomes the base of its budget (after it has read the
    /// policies and the topology, which are not the policies' doing).
    pub(super) fn rebase(&self) {
        if let Some(now) = resident_bytes() {
            let limit = now.saturating_add(self.budget.max(now));
            self.limit.store(limit, Ordering::Relaxed);
        }
    }
}

fn exceeded() -> ! {
    let reason = format!(
        "Rego policies grew the scan's memory by more than {} MiB, or than the scan's own size, \
         while they were evaluated (the evaluation memory budget); the scan stopped",
        EVALUATION_MEMORY_BUDGET >> 20
    );
    match ON_EXCEEDED.get() {
        Some(handler) => handler(&reason),
        None => std::process::exit(2),
    }
}

/// The process's resident memory, from `/proc/self/status` (`VmRSS`, in KiB).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_resident_memory_can_be_read_here() {
        // The watchdog is only as good as this reading; CI runs on Linux.
        let bytes = super::resident_bytes().expect("VmRSS");
        assert!(bytes > 0);
    }

    #[test]
    fn a_watched_evaluation_returns_its_result() {
        assert_eq!(super::watch(|| 6 * 7), 42);
    }

    #[test]
    fn a_watched_evaluation_that_panics_ends_the_watch() {
        // Before, the watchdog outlived the panic and the scope waited for it forever.
        let caught = std::panic::catch_unwind(|| super::watch(|| panic!("inside")));
        assert!(caught.is_err());
    }
}
