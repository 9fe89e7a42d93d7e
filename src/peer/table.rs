//! The table of live peer connections, read by `kith status` without messaging any actor.

use std::net::SocketAddr;
use std::sync::Arc;

use dashmap::DashMap;
use serde::Serialize;

use crate::identity::FeedId;

/// Who dialled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We dialled them.
    Outbound,
    /// They dialled us.
    Inbound,
}

/// One live connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Their address.
    pub addr: SocketAddr,
    /// When it came up (ms since the epoch).
    pub since_ms: u64,
    /// Who dialled.
    pub direction: Direction,
    /// The connection, for its byte counters.
    pub conn: quinn::Connection,
}

/// Live connections by peer id. Cheap to clone; clones share the table.
#[derive(Clone, Default)]
pub struct Connections {
    map: Arc<DashMap<FeedId, ConnInfo>>,
}

/// A connection as `kith status --json` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ConnView {
    /// Peer id.
    pub peer: String,
    /// Address.
    pub addr: String,
    /// Since (ms since the epoch).
    pub since_ms: u64,
    /// Who dialled.
    pub direction: Direction,
    /// Bytes sent on the UDP path.
    pub bytes_sent: u64,
    /// Bytes received on the UDP path.
    pub bytes_received: u64,
    /// Round-trip time estimate, µs.
    pub rtt_us: u64,
}

/// What [`Connections::admit`] decided about a new connection with a peer.
#[derive(Debug)]
pub enum Admitted {
    /// It is the only connection with that peer.
    New,
    /// It replaces this older connection, which the caller must close.
    Superseded(quinn::Connection),
    /// The existing connection stays; the caller must close the new one.
    Refused,
}

/// Which of two connections with one peer to keep: `Some(true)` for the new one.
///
/// - Same direction: the new one. The peer keeps one connection with us too, so a second dial
///   (or a second accept) means it gave the old connection up — typically it was killed and
///   restarted, and the old connection is dead but has not timed out here yet.
/// - Opposite directions (both sides dialled at once): the one dialled by the lower id, a rule
///   both sides evaluate alike, so they keep the same connection.
pub fn keep_new(me: &FeedId, peer: &FeedId, existing: Direction, new: Direction) -> bool {
    if existing == new {
        return true;
    }
    let dialled_by_me = |d: Direction| d == Direction::Outbound;
    let lower_is_me = me < peer;
    dialled_by_me(new) == lower_is_me
}

impl Connections {
    /// Record a connection; returns false if one with this peer is already up.
    pub fn insert(&self, peer: FeedId, info: ConnInfo) -> bool {
        match self.map.entry(peer) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(v) => {
                v.insert(info);
                true
            }
        }
    }

    /// Record a connection with `peer`, deciding by [`keep_new`] if one is already up.
    pub fn admit(&self, me: &FeedId, peer: FeedId, info: ConnInfo) -> Admitted {
        match self.map.entry(peer) {
            dashmap::Entry::Vacant(v) => {
                v.insert(info);
                Admitted::New
            }
            dashmap::Entry::Occupied(mut o) => {
                if keep_new(me, &peer, o.get().direction, info.direction) {
                    let old = o.insert(info);
                    Admitted::Superseded(old.conn)
                } else {
                    Admitted::Refused
                }
            }
        }
    }

    /// Forget the connection with `peer` if it is the one with this stable id.
    pub fn remove(&self, peer: &FeedId, stable_id: usize) {
        self.map.remove_if(peer, |_, info| info.conn.stable_id() == stable_id);
    }

    /// Whether a connection with `peer` is up.
    pub fn contains(&self, peer: &FeedId) -> bool {
        self.map.contains_key(peer)
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every connection, for status.
    pub fn views(&self) -> Vec<ConnView> {
        let mut out: Vec<ConnView> = self
            .map
            .iter()
            .map(|r| {
                let stats = r.conn.stats();
                ConnView {
                    peer: r.key().to_string(),
                    addr: r.addr.to_string(),
                    since_ms: r.since_ms,
                    direction: r.direction,
                    bytes_sent: stats.udp_tx.bytes,
                    bytes_received: stats.udp_rx.bytes,
                    rtt_us: r.conn.rtt().as_micros() as u64,
                }
            })
            .collect();
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_keep_the_same_connection_and_a_redial_replaces_the_old_one() {
        let (low, high) = (FeedId([1; 32]), FeedId([2; 32]));
        // Simultaneous dials: the low id's outbound = the high id's inbound is kept on both sides.
        assert!(keep_new(&low, &high, Direction::Inbound, Direction::Outbound));
        assert!(!keep_new(&low, &high, Direction::Outbound, Direction::Inbound));
        assert!(keep_new(&high, &low, Direction::Outbound, Direction::Inbound));
        assert!(!keep_new(&high, &low, Direction::Inbound, Direction::Outbound));
        // Same direction: the newer connection wins.
        for d in [Direction::Inbound, Direction::Outbound] {
            assert!(keep_new(&low, &high, d, d));
            assert!(keep_new(&high, &low, d, d));
        }
    }
}
