//! Recovery points kept outside the bookmark store (the Python client's
//! `RecoveryPointAdapter`): a [`RecoveryPointStore`] wraps any bookmark store and mirrors each
//! subscription's resume point into a [`RecoveryPointAdapter`]; when the application starts
//! again, even without the store's own state (a memory store, a lost file, another machine),
//! the points come back from the adapter and bookmark subscriptions resume from them.
//!
//! [`SowRecoveryPointAdapter`] keeps the points in a SOW topic of an AMPS server (by default
//! `/ADMIN/bookmark_store`, JSON, keyed by `/clientName` and `/subId`), through a separate
//! client connected to that server: never the client whose points it keeps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use amps_core::session::StoreError;
use amps_core::store::BookmarkStore;

use crate::client::Handle;
use crate::config::PublishOptions;
use crate::error::{Error, ErrorKind, Result};
use crate::params::Params;

/// Where recovery points are kept (see the module docs).
pub trait RecoveryPointAdapter: Send {
    /// Every recovery point kept for this client: `(sub_id, bookmark)`.
    fn recover(&mut self) -> Result<Vec<(String, String)>>;
    /// Keep `bookmark` as the recovery point of `sub_id`. An error leaves the point to be
    /// offered again (by the next update of that subscription, or by `sync`).
    fn update(&mut self, sub_id: &str, bookmark: &str) -> Result<()>;
    /// Forget `sub_id`.
    fn remove(&mut self, sub_id: &str) -> Result<()>;
}

/// A bookmark store whose resume points are also kept by a [`RecoveryPointAdapter`] (see the
/// module docs). Give it to the client builder as its bookmark store.
pub struct RecoveryPointStore<S, A> {
    store: S,
    adapter: A,
    /// The last point the adapter accepted, per subscription.
    saved: HashMap<String, String>,
    /// Points the adapter has not accepted yet (bounded: one per subscription).
    dirty: HashMap<String, String>,
}

impl<S: BookmarkStore, A: RecoveryPointAdapter> RecoveryPointStore<S, A> {
    /// Wrap `store`, first recovering every point `adapter` keeps into it (a point is used
    /// only for a subscription the store knows nothing of). Blocking with adapters that ask a
    /// server (from an async context, run it on a blocking thread).
    pub fn new(mut store: S, mut adapter: A) -> Result<Self> {
        let mut saved = HashMap::new();
        let mut buf = vec![0u8; 1024];
        for (sub, bm) in adapter.recover()? {
            let known = store.most_recent(&sub, &mut buf).map_err(Error::from)?;
            if known.is_empty() {
                store.log(&sub, &bm).map_err(Error::from)?;
                store.discard(&sub, &bm).map_err(Error::from)?;
            }
            saved.insert(sub, bm);
        }
        Ok(RecoveryPointStore {
            store,
            adapter,
            saved,
            dirty: HashMap::new(),
        })
    }

    /// The wrapped store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The adapter.
    pub fn adapter(&self) -> &A {
        &self.adapter
    }

    /// Offer `sub_id`'s current resume point to the adapter if it changed.
    fn mirror(&mut self, sub_id: &str) {
        let mut buf = [0u8; 512];
        let Ok(point) = self.store.most_recent(sub_id, &mut buf) else {
            return;
        };
        if point.is_empty() || self.saved.get(sub_id).is_some_and(|s| s == point) {
            return;
        }
        let point = point.to_owned();
        match self.adapter.update(sub_id, &point) {
            Ok(()) => {
                self.dirty.remove(sub_id);
                self.saved.insert(sub_id.to_owned(), point);
            }
            Err(_) => {
                self.dirty.insert(sub_id.to_owned(), point);
            }
        }
    }

    /// Offer every point the adapter refused before; true if it took them all.
    fn retry_dirty(&mut self) -> bool {
        let pending: Vec<(String, String)> = self.dirty.drain().collect();
        let mut all = true;
        for (sub, point) in pending {
            if self.adapter.update(&sub, &point).is_ok() {
                self.saved.insert(sub, point);
            } else {
                self.dirty.insert(sub, point);
                all = false;
            }
        }
        all
    }
}

impl<S: BookmarkStore, A: RecoveryPointAdapter> BookmarkStore for RecoveryPointStore<S, A> {
    fn is_enabled(&self) -> bool {
        self.store.is_enabled()
    }
    fn log(&mut self, sub_id: &str, bookmark: &str) -> std::result::Result<bool, StoreError> {
        self.store.log(sub_id, bookmark)
    }
    fn discard(&mut self, sub_id: &str, bookmark: &str) -> std::result::Result<(), StoreError> {
        self.store.discard(sub_id, bookmark)?;
        self.mirror(sub_id);
        Ok(())
    }
    fn persisted(&mut self, sub_id: &str, bookmark: &str) -> std::result::Result<(), StoreError> {
        self.store.persisted(sub_id, bookmark)?;
        self.mirror(sub_id);
        Ok(())
    }
    fn most_recent<'o>(
        &mut self,
        sub_id: &str,
        out: &'o mut [u8],
    ) -> std::result::Result<&'o str, StoreError> {
        self.store.most_recent(sub_id, out)
    }
    fn remove(&mut self, sub_id: &str) {
        self.store.remove(sub_id);
        self.saved.remove(sub_id);
        self.dirty.remove(sub_id);
        // Best effort: a point the adapter keeps for a removed subscription only means it
        // would resume from there if subscribed again.
        let _ = self.adapter.remove(sub_id);
    }
    fn sync(&mut self) -> std::result::Result<(), StoreError> {
        self.store.sync()?;
        if self.retry_dirty() {
            Ok(())
        } else {
            Err(StoreError::Io)
        }
    }
    fn prune(&mut self) -> std::result::Result<(), StoreError> {
        self.store.prune()
    }
}

impl<S, A> std::fmt::Debug for RecoveryPointStore<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryPointStore")
            .field("subscriptions", &self.saved.len())
            .field("unsaved", &self.dirty.len())
            .finish_non_exhaustive()
    }
}

/// The default topic of [`SowRecoveryPointAdapter`].
pub const RECOVERY_TOPIC: &str = "/ADMIN/bookmark_store";

/// Keeps recovery points in a SOW topic (see the module docs): one JSON record
/// `{"clientName":…,"subId":…,"bookmark":…}` per subscription, keyed by `/clientName` and
/// `/subId`.
#[derive(Debug)]
pub struct SowRecoveryPointAdapter {
    handle: Handle,
    client_name: String,
    topic: String,
    timeout: Duration,
}

impl SowRecoveryPointAdapter {
    /// Keep the points of the client named `tracked` through `store_client`, a separate,
    /// connected and logged-on client of the server holding the topic (JSON message type).
    pub fn new(store_client: &impl AsRef<Handle>, tracked: &str) -> Result<Self> {
        if tracked.contains('\'') {
            return Err(Error::usage(
                "a client name with `'` cannot be matched in a recovery-point filter",
            ));
        }
        Ok(SowRecoveryPointAdapter {
            handle: store_client.as_ref().clone(),
            client_name: tracked.to_owned(),
            topic: RECOVERY_TOPIC.to_owned(),
            timeout: crate::config::DEFAULT_COMMAND_TIMEOUT,
        })
    }

    /// Another topic than [`RECOVERY_TOPIC`] (configured the same way on the server).
    pub fn topic(mut self, topic: &str) -> Self {
        self.topic = topic.to_owned();
        self
    }

    /// How long `recover` waits for the server (default: the default command timeout).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    fn filter(&self) -> String {
        format!("/clientName = '{}'", self.client_name)
    }
}

impl RecoveryPointAdapter for SowRecoveryPointAdapter {
    fn recover(&mut self) -> Result<Vec<(String, String)>> {
        let filter = self.filter();
        let mut stream = self
            .handle
            .sow(&self.topic, Params::filter(&filter).timeout(self.timeout))
            .wait()?;
        let deadline = Instant::now() + self.timeout;
        let mut points = Vec::new();
        while let Some(m) = stream.next_blocking(Some(deadline)) {
            let m = m?;
            if m.command() != amps_core::codec::CommandKind::Sow {
                continue;
            }
            points.push(parse_record(m.data())?);
        }
        Ok(points)
    }

    fn update(&mut self, sub_id: &str, bookmark: &str) -> Result<()> {
        let record = serde_json::json!({
            "clientName": self.client_name,
            "subId": sub_id,
            "bookmark": bookmark,
        })
        .to_string();
        let queued = self.handle.try_publish(
            false,
            &self.topic,
            record.as_bytes(),
            &PublishOptions::default(),
        )?;
        if queued {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Busy,
                "the recovery-point client's publish queue is full",
            ))
        }
    }

    fn remove(&mut self, sub_id: &str) -> Result<()> {
        if sub_id.contains('\'') {
            return Ok(());
        }
        let filter = format!("{} AND /subId = '{sub_id}'", self.filter());
        // Not waited for: the deletion goes out in order with the updates.
        drop(self.handle.sow_delete(&self.topic, filter.as_str()));
        Ok(())
    }
}

/// `(subId, bookmark)` of a record the adapter wrote.
fn parse_record(data: &[u8]) -> Result<(String, String)> {
    let bad = || {
        Error::new(
            ErrorKind::Store,
            "a recovery-point record is not one this adapter wrote",
        )
    };
    let v: serde_json::Value = serde_json::from_slice(data).map_err(|_| bad())?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Ok((
        field("subId").ok_or_else(bad)?,
        field("bookmark").ok_or_else(bad)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::store::MemoryBookmarkStore;
    use std::sync::{Arc, Mutex};

    /// Keeps points in a shared map; refuses updates while `down`.
    #[derive(Clone, Default)]
    struct Map(Arc<Mutex<(HashMap<String, String>, bool)>>);

    impl RecoveryPointAdapter for Map {
        fn recover(&mut self) -> Result<Vec<(String, String)>> {
            Ok(self.0.lock().unwrap().0.clone().into_iter().collect())
        }
        fn update(&mut self, sub: &str, bm: &str) -> Result<()> {
            let mut g = self.0.lock().unwrap();
            if g.1 {
                return Err(Error::new(ErrorKind::Disconnected, "down"));
            }
            g.0.insert(sub.into(), bm.into());
            Ok(())
        }
        fn remove(&mut self, sub: &str) -> Result<()> {
            self.0.lock().unwrap().0.remove(sub);
            Ok(())
        }
    }

    fn store() -> MemoryBookmarkStore<Vec<u8>> {
        MemoryBookmarkStore::new(vec![0; 4096])
    }

    #[test]
    fn points_survive_the_store_and_refused_updates_are_offered_again() {
        let map = Map::default();
        let mut s = RecoveryPointStore::new(store(), map.clone()).unwrap();
        for bm in ["1|1|", "1|2|"] {
            assert!(s.log("s", bm).unwrap());
        }
        s.discard("s", "1|1|").unwrap();
        assert_eq!(map.0.lock().unwrap().0["s"], "1|1|");
        // The adapter is down: the point waits, and sync says so until it is taken.
        map.0.lock().unwrap().1 = true;
        s.discard("s", "1|2|").unwrap();
        assert_eq!(map.0.lock().unwrap().0["s"], "1|1|");
        assert_eq!(s.sync(), Err(StoreError::Io));
        map.0.lock().unwrap().1 = false;
        assert_eq!(s.sync(), Ok(()));
        assert_eq!(map.0.lock().unwrap().0["s"], "1|2|");
        // A new, empty store recovers the point from the adapter.
        let mut again = RecoveryPointStore::new(store(), map.clone()).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(again.most_recent("s", &mut buf).unwrap(), "1|2|");
        again.remove("s");
        assert!(map.0.lock().unwrap().0.is_empty());
    }
}
