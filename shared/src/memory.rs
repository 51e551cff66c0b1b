//! What the services' in-memory stores (`store/memory.rs`) share. They back the handler
//! tests and the money-path simulation; no function uses them.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poison: a test that panicked while holding it must not turn every
/// later test's call into a second, unrelated panic.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
