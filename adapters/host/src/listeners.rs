//! The listeners a client has: set from any thread, called on the dispatch thread.

use std::sync::{Arc, Mutex};

use amps_core::session::ConnectionState;

use crate::error::Error;
use crate::message::{FailedWrite, Message};

/// A listener of `T` values.
type Listener<T> = Arc<dyn Fn(T) + Send + Sync>;
/// A listener of `&T` values.
type RefListener<T> = Arc<dyn Fn(&T) + Send + Sync>;

/// Identifies a connection state listener for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u64);

/// The listeners a client has (set from any thread, called on the dispatch thread).
#[derive(Default)]
pub(crate) struct Listeners {
    pub(crate) exception: Mutex<Option<RefListener<Error>>>,
    pub(crate) last_chance: Mutex<Option<RefListener<Message>>>,
    pub(crate) failed_write: Mutex<Option<RefListener<FailedWrite>>>,
    /// Called with no argument: the client wraps the application's handler with a handle of
    /// its own type.
    pub(crate) disconnect: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    pub(crate) state: Mutex<Vec<(u64, Listener<ConnectionState>)>>,
}
