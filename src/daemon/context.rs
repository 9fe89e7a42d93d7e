//! [`PeerContext`]: what every networked actor of the daemon runs with — the node, the QUIC
//! endpoint, the connections table, the replicators registry, the switchboard links table.
//!
//! It sits above both plumbing folders ([`crate::daemon::peer`] and [`crate::daemon::uplink`])
//! because it holds tables from each; keeping it out of them lets neither import the other.

use std::sync::Arc;

use crate::daemon::messages::{ReplicatorMsg, SbLinkMsg};
use crate::daemon::node::Node;
use crate::daemon::peer::{Connections, IntroPolicy, Replicators, ServePolicy};
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
    /// How this node answers introductions from ids it does not follow.
    pub introductions: IntroPolicy,
    /// Feed replicators, by feed.
    pub replicators: Replicators<ReplicatorMsg>,
    /// Switchboard links, for introductions.
    pub relays: Relays<SbLinkMsg>,
    /// Where switchboard links are started (one per switchboard or cluster; the tree states
    /// their restart type), so a link can be added while the daemon runs (`kith follow CARD`).
    pub links: DynamicSupervisorHandle,
}
