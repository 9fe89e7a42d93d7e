//! Peer-to-peer plumbing shared by the listener, the connection actors and the dialers: the
//! context they run in, the consent policy, and the table of live connections.

mod backoff;
mod connect;
mod outbox;
mod policy;
mod punch;
mod replicators;
mod table;

use std::sync::Arc;

pub use backoff::{redial_delay, repunch_delay};
pub use connect::connect;
pub use outbox::{Job, Outbox, OutboxFull};
pub use policy::{wants, LocalView, ServePolicy};
pub use punch::punch;

pub use replicators::{FeedProgress, Replicators};
pub use table::{keep_new, Admitted, ConnInfo, Connections, Direction, Via};

use crate::daemon::node::Node;
use crate::daemon::uplink::Relays;
use crate::net::PeerEndpoint;
use crate::supervisor::DynamicSupervisorHandle;

/// What every peer actor needs, cheap to clone.
#[derive(Clone)]
pub struct PeerContext {
    /// The node: identity, store, rolodex, writer, events.
    pub node: Node,
    /// The QUIC endpoint (one UDP socket that listens and dials).
    pub endpoint: Arc<PeerEndpoint>,
    /// Live connections.
    pub connections: Connections,
    /// Where connection actors are started (temporary children).
    pub peers: DynamicSupervisorHandle,
    /// Whom this node serves.
    pub serve: ServePolicy,
    /// Feed replicators, by feed.
    pub replicators: Replicators,
    /// Switchboard links, for introductions.
    pub relays: Relays,
}
