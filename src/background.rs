//! Freeing large values off the critical path.

/// Frees `value` on a thread of its own: the parse trees, placements and caches of a large
/// repository are millions of allocations, and the report need not wait for them (issue 13
/// profile: about 6% of a scan was dropping). If no thread can be started, frees it here.
pub fn drop_in_background<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("envfence-drop".into())
        .spawn(move || drop(value));
}
