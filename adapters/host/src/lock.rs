//! The one way this crate takes a lock (below [`crate::sync`] and the timer thread, which
//! both use it).

use std::sync::{Mutex, MutexGuard};

/// Lock a mutex, recovering from poisoning: every state behind these locks is plain data that
/// stays consistent between statements (a panic elsewhere cannot leave it half-written).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
