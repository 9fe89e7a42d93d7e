//! The table of live peer connections, read by `kith status` without messaging any actor.
//!
//! It keeps each connection as a [`Conn`] handle from `net/` (counters, identity, close), so this
//! plumbing does not touch quinn.

use std::net::SocketAddr;
use std::sync::Arc;

use dashmap::DashMap;
use serde::Serialize;

use crate::identity::FeedId;
use crate::net::Conn;
use crate::relay::fake_addr;

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
    pub conn: Conn,
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
    /// Whether it rides a switchboard relay (`addr` is then the peer's fake relay address).
    pub relayed: bool,
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
    Superseded(Conn),
    /// The existing connection stays; the caller must close the new one.
    Refused,
}

/// Which of two connections with one peer to keep: true for the new one.
///
/// - One direct and one through a switchboard relay, whoever dialled each: the direct one.
///   After an introduction the caller dials through the relay at once and punches beside it,
///   while the callee dials back (relay first, direct when it opens): both direct and relayed
///   connections come up, in either order, in either direction, and the traffic must end on the
///   direct path. A relayed connection is relayed at both ends, so both sides agree whatever
///   order the two came up in. (The cost: a restarted peer that comes back only through the relay
///   waits until the dead direct connection times out here, [`CONNECTION_IDLE_TIMEOUT`].)
/// - Same path, same direction: the new one. The peer keeps one connection with us too, so a
///   second dial (or a second accept) means it gave the old connection up — typically it was
///   killed and restarted, and the old connection is dead but has not timed out here yet.
/// - Same path, opposite directions (both sides dialled at once): the one dialled by the lower
///   id, a rule both sides evaluate alike, so they keep the same connection.
///
/// [`CONNECTION_IDLE_TIMEOUT`]: crate::limits::CONNECTION_IDLE_TIMEOUT
pub fn keep_new(me: &FeedId, peer: &FeedId, existing: Via, new: Via) -> bool {
    if existing.relayed != new.relayed {
        return existing.relayed;
    }
    if existing.direction == new.direction {
        return true;
    }
    let dialled_by_me = |d: Direction| d == Direction::Outbound;
    let lower_is_me = me < peer;
    dialled_by_me(new.direction) == lower_is_me
}

/// A connection as [`keep_new`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via {
    /// Who dialled.
    pub direction: Direction,
    /// Whether it rides a switchboard relay (the inner endpoint) rather than a direct UDP path.
    pub relayed: bool,
}

impl ConnInfo {
    /// How this connection with `peer` reaches it. A relayed connection's remote address is the
    /// peer's fake relay address ([`fake_addr`]), derived from its key, which no real path has.
    pub fn via(&self, peer: &FeedId) -> Via {
        Via {
            direction: self.direction,
            relayed: self.addr == fake_addr(peer),
        }
    }
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
                if keep_new(me, &peer, o.get().via(&peer), info.via(&peer)) {
                    let old = o.insert(info);
                    Admitted::Superseded(old.conn)
                } else {
                    Admitted::Refused
                }
            }
        }
    }

    /// Close the connection with `peer` if it rides a switchboard relay (its switchboard link is
    /// gone: the peer rejoined, so the path it rode is dead though its idle timer still runs);
    /// true if one was closed. A direct connection is left alone.
    pub fn close_relayed(&self, peer: &FeedId) -> bool {
        let Some(info) = self
            .map
            .get(peer)
            .filter(|c| c.via(peer).relayed)
            .map(|c| c.conn.clone())
        else {
            return false;
        };
        info.close(crate::net::CloseCode::Normal);
        true
    }

    /// Forget the connection with `peer` if it is the one with this stable id; false if another
    /// connection (one that superseded it) is the peer's now.
    pub fn remove(&self, peer: &FeedId, stable_id: usize) -> bool {
        self.map
            .remove_if(peer, |_, info| info.conn.stable_id() == stable_id)
            .is_some()
    }

    /// How the connection with `peer` reaches it, if one is up.
    pub fn via(&self, peer: &FeedId) -> Option<Via> {
        self.map.get(peer).map(|c| c.via(peer))
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
                    relayed: r.via(r.key()).relayed,
                    bytes_sent: stats.bytes_sent,
                    bytes_received: stats.bytes_received,
                    rtt_us: stats.rtt.as_micros() as u64,
                }
            })
            .collect();
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        out
    }
}

impl Connections {
    /// The live connection with `peer`, to open a stream of its own on (a blob fetch).
    pub fn conn(&self, peer: &FeedId) -> Option<Conn> {
        self.map.get(peer).map(|c| c.conn.clone())
    }

    /// The ids of the peers connected now.
    pub fn peers(&self) -> Vec<FeedId> {
        self.map.iter().map(|c| *c.key()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(direction: Direction, relayed: bool) -> Via {
        Via { direction, relayed }
    }

    #[test]
    fn both_sides_keep_the_same_connection_and_a_redial_replaces_the_old_one() {
        let (low, high) = (FeedId([1; 32]), FeedId([2; 32]));
        let (inbound, outbound) = (
            via(Direction::Inbound, false),
            via(Direction::Outbound, false),
        );
        // Simultaneous dials: the low id's outbound = the high id's inbound is kept on both sides.
        assert!(keep_new(&low, &high, inbound, outbound));
        assert!(!keep_new(&low, &high, outbound, inbound));
        assert!(keep_new(&high, &low, outbound, inbound));
        assert!(!keep_new(&high, &low, inbound, outbound));
        // Same direction, same path: the newer connection wins.
        for d in [Direction::Inbound, Direction::Outbound] {
            for path in [false, true] {
                assert!(keep_new(&low, &high, via(d, path), via(d, path)));
                assert!(keep_new(&high, &low, via(d, path), via(d, path)));
            }
        }
    }

    #[test]
    fn relay_first_then_direct_in_the_same_direction_keeps_the_direct_one_in_either_order() {
        let (low, high) = (FeedId([1; 32]), FeedId([2; 32]));
        // The caller dialled both (the relay at once, the punch beside it): outbound at the
        // caller, inbound at the callee; whichever came up first, the direct one stays.
        for (me, peer) in [(low, high), (high, low)] {
            for d in [Direction::Inbound, Direction::Outbound] {
                assert!(keep_new(&me, &peer, via(d, true), via(d, false)));
                assert!(!keep_new(&me, &peer, via(d, false), via(d, true)));
            }
        }
    }

    #[test]
    fn a_direct_connection_beats_a_relayed_one_whoever_dialled_it() {
        let (low, high) = (FeedId([1; 32]), FeedId([2; 32]));
        // The low id dialled through the relay, the high id dialled directly: both keep the direct
        // one, in whichever order the two connections came up.
        let (low_relayed, low_direct) = (
            via(Direction::Outbound, true),
            via(Direction::Inbound, false),
        );
        assert!(keep_new(&low, &high, low_relayed, low_direct));
        assert!(!keep_new(&low, &high, low_direct, low_relayed));
        let (high_relayed, high_direct) = (
            via(Direction::Inbound, true),
            via(Direction::Outbound, false),
        );
        assert!(keep_new(&high, &low, high_relayed, high_direct));
        assert!(!keep_new(&high, &low, high_direct, high_relayed));
    }
}
