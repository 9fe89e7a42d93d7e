//! An in-memory network for tests: many nodes in one process, with seeded delays, drops and
//! partitions, driven by tokio time (so a paused clock makes it deterministic in time).
//!
//! Each send picks a delay from the seeded RNG and spawns a task that sleeps and then hands the
//! frame to the receiver's [`Inbound`]. A partition drops frames at send and at delivery time;
//! healing it tells both sides their links came back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::transport::{Inbound, Transport, TransportError};
use crate::limits;
use crate::presence::types::ReplicaName;

/// Delay and loss settings.
#[derive(Clone, Debug)]
pub struct MemoryNetConfig {
    /// Smallest one-way delay.
    pub latency_min: Duration,
    /// Largest one-way delay.
    pub latency_max: Duration,
    /// Probability that a frame is lost.
    pub drop_rate: f64,
}

impl Default for MemoryNetConfig {
    fn default() -> Self {
        Self {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(10),
            drop_rate: 0.0,
        }
    }
}

struct NetState {
    nodes: BTreeMap<ReplicaName, Arc<dyn Inbound>>,
    blocked: BTreeSet<(ReplicaName, ReplicaName)>,
    rng: StdRng,
    cfg: MemoryNetConfig,
}

/// The shared network. Cheap to clone.
#[derive(Clone)]
pub struct MemoryNetwork {
    state: Arc<Mutex<NetState>>,
    inflight: Arc<AtomicUsize>,
}

impl MemoryNetwork {
    /// A network with the given behaviour and RNG seed.
    pub fn new(cfg: MemoryNetConfig, seed: u64) -> Self {
        let state = NetState {
            nodes: BTreeMap::new(),
            blocked: BTreeSet::new(),
            rng: StdRng::seed_from_u64(seed),
            cfg,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            inflight: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The outbound handle of a node.
    pub fn transport(&self, name: &str) -> MemoryTransport {
        MemoryTransport {
            name: ReplicaName::new(name),
            net: self.clone(),
        }
    }

    /// Registers (or replaces) the inbound side of a node.
    pub fn attach(&self, name: &str, inbound: Arc<dyn Inbound>) {
        self.lock().nodes.insert(ReplicaName::new(name), inbound);
    }

    /// Removes a node (it crashed): frames to it are dropped.
    pub fn detach(&self, name: &str) {
        self.lock().nodes.remove(&ReplicaName::new(name));
    }

    /// Cuts the links between the two groups.
    pub fn partition(&self, a: &[&str], b: &[&str]) {
        let mut st = self.lock();
        for x in a {
            for y in b {
                st.blocked
                    .insert((ReplicaName::new(x), ReplicaName::new(y)));
                st.blocked
                    .insert((ReplicaName::new(y), ReplicaName::new(x)));
            }
        }
    }

    /// Restores every link and tells both ends of each restored link.
    pub fn heal(&self) {
        let (restored, nodes) = {
            let mut st = self.lock();
            (std::mem::take(&mut st.blocked), st.nodes.clone())
        };
        for (a, b) in restored {
            if let Some(inbound) = nodes.get(&a) {
                inbound.peer_connected(b);
            }
        }
    }

    fn linked(st: &NetState, a: &ReplicaName, b: &ReplicaName) -> bool {
        !st.blocked.contains(&(a.clone(), b.clone()))
    }

    fn send(
        &self,
        from: &ReplicaName,
        to: &ReplicaName,
        frame: Bytes,
    ) -> Result<(), TransportError> {
        let delay = {
            let mut st = self.lock();
            if !st.nodes.contains_key(to) {
                return Err(TransportError::Unreachable(to.clone()));
            }
            let drop_rate = st.cfg.drop_rate;
            if !Self::linked(&st, from, to) || st.rng.gen_bool(drop_rate) {
                return Ok(());
            }
            let (lo, hi) = (st.cfg.latency_min, st.cfg.latency_max);
            st.rng.gen_range(lo..=hi)
        };
        if self.inflight.fetch_add(1, Ordering::Relaxed) >= limits::MEMORY_TRANSPORT_INFLIGHT {
            self.inflight.fetch_sub(1, Ordering::Relaxed);
            return Err(TransportError::Full(to.clone()));
        }
        let net = self.clone();
        let (from, to) = (from.clone(), to.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            net.inflight.fetch_sub(1, Ordering::Relaxed);
            let target = {
                let st = net.lock();
                Self::linked(&st, &from, &to)
                    .then(|| st.nodes.get(&to).cloned())
                    .flatten()
            };
            if let Some(inbound) = target {
                inbound.deliver(from, frame);
            }
        });
        Ok(())
    }
}

/// One node's outbound handle on a [`MemoryNetwork`].
#[derive(Clone)]
pub struct MemoryTransport {
    name: ReplicaName,
    net: MemoryNetwork,
}

impl Transport for MemoryTransport {
    fn local(&self) -> ReplicaName {
        self.name.clone()
    }

    fn peers(&self) -> Vec<ReplicaName> {
        self.net
            .lock()
            .nodes
            .keys()
            .filter(|n| **n != self.name)
            .cloned()
            .collect()
    }

    fn send(&self, to: &ReplicaName, frame: Bytes) -> Result<(), TransportError> {
        self.net.send(&self.name, to, frame)
    }
}
