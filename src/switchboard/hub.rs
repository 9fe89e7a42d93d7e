//! The switchboard's relay hub: the sans-IO [`Router`] and each client's outer link, under one
//! lock, so that the router's room check and the send are one step.
//!
//! A session registers its client's link when it joins and drives one task that reads the
//! client's outer datagrams and routes them here; a forwarded frame goes straight into the
//! destination's outer connection (no queue or task of our own in between: the connection's
//! datagram send buffer, [`crate::limits::RELAY_CLIENT_QUEUE_BYTES`], is the per-destination
//! queue, and the router refuses and counts what does not fit). A client of another cluster node
//! that a local client was introduced to is registered too, with its node's queue as its link
//! ([`crate::switchboard::cluster::nodes::NodeForward`]); frames from it arrive through [`Hub::deliver`].
//!
//! Only introduced pairs are forwarded; the router rewrites the source key, enforces the rate
//! and size limits and counts everything (no record of who talked to whom).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use crate::identity::FeedId;
use crate::relay::{Action, DatagramLink, Router, RouterConfig, RouterError, RouterStats};

struct Inner {
    router: Router,
    links: HashMap<FeedId, Arc<dyn DatagramLink>>,
    /// Clients of other nodes a local client is introduced to, and their node.
    remote: HashMap<FeedId, FeedId>,
    /// Forwarded frames the destination's link refused after the room check (it closed).
    lost: u64,
}

/// The relay hub of one switchboard node. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(RouterConfig::default())
    }
}

impl Hub {
    /// A hub holding its clients to `config`'s limits.
    pub fn new(config: RouterConfig) -> Self {
        let inner = Inner {
            router: Router::new(config),
            links: HashMap::new(),
            remote: HashMap::new(),
            lost: 0,
        };
        Hub {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update below is a single step on the router and the map: a panic cannot leave
        // them half-changed, so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a client and the link its frames are sent on.
    pub fn add(&self, client: FeedId, link: Arc<dyn DatagramLink>) -> Result<(), RouterError> {
        let mut inner = self.lock();
        inner.router.add_client(client, Instant::now())?;
        inner.links.insert(client, link);
        Ok(())
    }

    /// Forget a client and all its pairs (and the clients of other nodes it alone was
    /// introduced to).
    pub fn remove(&self, client: &FeedId) {
        let mut inner = self.lock();
        let Inner {
            router,
            links,
            remote,
            ..
        } = &mut *inner;
        links.remove(client);
        remote.remove(client);
        for peer in router.remove_client(client) {
            if remote.contains_key(&peer) && router.pair_count(&peer) == 0 {
                router.remove_client(&peer);
                links.remove(&peer);
                remote.remove(&peer);
            }
        }
    }

    /// Register `client` of cluster node `node`, reached through `link` (its node's queue), unless
    /// it is already known as a local client. A client known as another node's moves to `node`
    /// with its pairs: it failed over (its old node died, or it rejoined elsewhere), and the
    /// caller checked with presence that `node` holds it now.
    pub fn add_remote(
        &self,
        client: FeedId,
        node: FeedId,
        link: Arc<dyn DatagramLink>,
    ) -> Result<(), RouterError> {
        let mut inner = self.lock();
        if inner.router.is_client(&client) {
            if inner.remote.get(&client).is_some_and(|old| *old != node) {
                inner.links.insert(client, link);
                inner.remote.insert(client, node);
            }
            return Ok(());
        }
        inner.router.add_client(client, Instant::now())?;
        inner.links.insert(client, link);
        inner.remote.insert(client, node);
        Ok(())
    }

    /// Forget every client of `node` (its link ended).
    pub fn remove_node(&self, node: &FeedId) {
        let gone: Vec<FeedId> = {
            let inner = self.lock();
            inner
                .remote
                .iter()
                .filter(|(_, n)| *n == node)
                .map(|(c, _)| *c)
                .collect()
        };
        for client in gone {
            self.remove(&client);
        }
    }

    /// Let `a` and `b` exchange packets (both consented).
    pub fn open_pair(&self, a: FeedId, b: FeedId) -> Result<(), RouterError> {
        self.lock().router.open_pair(a, b, Instant::now())
    }

    /// Whether `client` is registered.
    pub fn is_client(&self, client: &FeedId) -> bool {
        self.lock().router.is_client(client)
    }

    /// Route one datagram from `from`: sent on the destination's link, or refused and counted
    /// by the router.
    pub fn route(&self, from: &FeedId, frame: Bytes) {
        let mut guard = self.lock();
        let Inner {
            router,
            links,
            lost,
            ..
        } = &mut *guard;
        let action = router.route(from, frame, Instant::now(), |to| {
            links.get(to).map_or(0, |l| l.room())
        });
        if let Action::Forward { to, frame } = action {
            // The router checked the room under this same lock, so only a closed link refuses.
            if links.get(&to).is_none_or(|link| link.send(frame).is_err()) {
                *lost += 1;
            }
        }
    }

    /// Deliver `frame` (`[from][inner packet]`, stamped by `node`) to local client `to`; false
    /// (and nothing sent) if `from` is not a client of `node` that a local client was
    /// introduced to. The router then checks the pair, the size and the room, and counts.
    pub fn deliver(&self, node: &FeedId, to: FeedId, frame: Bytes) -> bool {
        let mut guard = self.lock();
        let Inner {
            router,
            links,
            lost,
            remote,
        } = &mut *guard;
        let from = frame
            .get(..crate::limits::RELAY_HEADER_BYTES)
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .map(FeedId);
        if from.is_none_or(|from| remote.get(&from) != Some(node)) {
            return false;
        }
        if let Action::Forward { to, frame } = router.deliver(to, frame, Instant::now(), |to| {
            links.get(to).map_or(0, |l| l.room())
        }) {
            if links.get(&to).is_none_or(|link| link.send(frame).is_err()) {
                *lost += 1;
            }
        }
        true
    }

    /// The limits clients are held to.
    pub fn config(&self) -> RouterConfig {
        self.lock().router.config().clone()
    }

    /// Totals over all clients.
    pub fn stats(&self) -> RouterStats {
        self.lock().router.stats().clone()
    }

    /// Forwarded frames lost because the destination's link had just closed.
    pub fn lost(&self) -> u64 {
        self.lock().lost
    }
}
