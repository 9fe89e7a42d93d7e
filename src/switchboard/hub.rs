//! The switchboard's relay hub: the sans-IO [`Router`] and each client's bounded datagram queue,
//! under one lock, so that the router's queue-depth check and the enqueue are one step.
//!
//! A session registers its client when it joins and drives two tasks: one reads the client's
//! outer datagrams and routes them here, one drains the client's queue into its connection.
//! Only introduced pairs are forwarded; the router rewrites the source key, enforces the rate
//! and size limits and counts everything (no record of who talked to whom).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::identity::FeedId;
use crate::relay::{Action, Router, RouterConfig, RouterError, RouterStats};

struct Inner {
    router: Router,
    outs: HashMap<FeedId, mpsc::Sender<Bytes>>,
}

/// The relay hub of one switchboard node. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
}

impl Default for Hub {
    fn default() -> Self {
        let inner = Inner { router: Router::new(RouterConfig::default()), outs: HashMap::new() };
        Hub { inner: Arc::new(Mutex::new(inner)) }
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update below is a single step on the router and the map: a panic cannot leave
        // them half-changed, so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a client; returns the receiving end of its datagram queue.
    pub fn add(&self, client: FeedId) -> Result<mpsc::Receiver<Bytes>, RouterError> {
        let mut inner = self.lock();
        let capacity = inner.router.config().queue_packets_max + 1;
        inner.router.add_client(client, Instant::now())?;
        let (tx, rx) = mpsc::channel(capacity);
        inner.outs.insert(client, tx);
        Ok(rx)
    }

    /// Forget a client and all its pairs.
    pub fn remove(&self, client: &FeedId) {
        let mut inner = self.lock();
        inner.router.remove_client(client);
        inner.outs.remove(client);
    }

    /// Let `a` and `b` exchange packets (both consented).
    pub fn open_pair(&self, a: FeedId, b: FeedId) -> Result<(), RouterError> {
        self.lock().router.open_pair(a, b)
    }

    /// Whether `client` is registered.
    pub fn is_client(&self, client: &FeedId) -> bool {
        self.lock().router.is_client(client)
    }

    /// Route one datagram from `from`: forwarded into the destination's queue, or refused and
    /// counted by the router.
    pub fn route(&self, from: &FeedId, frame: Bytes) {
        let mut guard = self.lock();
        let Inner { router, outs } = &mut *guard;
        let action = router.route(from, frame, Instant::now(), |to| {
            outs.get(to).map_or(0, |q| q.max_capacity() - q.capacity())
        });
        if let Action::Forward { to, frame } = action {
            if let Some(queue) = outs.get(&to) {
                // The router checked the depth under this same lock, so there is room.
                let _ = queue.try_send(frame);
            }
        }
    }

    /// The router's counters.
    pub fn stats(&self) -> RouterStats {
        self.lock().router.stats().clone()
    }
}
