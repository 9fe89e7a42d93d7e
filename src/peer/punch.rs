//! Hole punching: after an introduction, both sides try a direct path to the address the
//! switchboard saw the other at, from the same UDP socket they use for everything else. Where it
//! works (no NAT, or NATs that keep the mapping), the connection goes direct and the traffic
//! leaves the switchboard; where it does not, the relayed path carries it.
//!
//! The caller tries first and briefly ([`PUNCH_TIMEOUT`]) before it dials through the relay; the
//! callee dials the caller at the same time, which opens its own NAT's mapping toward the
//! caller. If both succeed, the connections table keeps one (the tie-break in `Connections`).

use std::net::SocketAddr;

use crate::actors::listener::start_peer;
use crate::identity::FeedId;
use crate::limits::PUNCH_TIMEOUT;
use crate::peer::{Direction, PeerContext};

/// Try the direct path to `peer` at `observed`; true if a connection actor now holds it.
pub async fn punch(ctx: &PeerContext, peer: FeedId, observed: SocketAddr) -> bool {
    let Ok(key) = peer.verifying_key() else { return false };
    let dial = tokio::time::timeout(PUNCH_TIMEOUT, ctx.endpoint.dial(observed, key)).await;
    match dial {
        Ok(Ok((conn, _))) => start_peer(ctx, conn, peer, Direction::Outbound).await.is_ok(),
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer.short(), %observed, error = %e, "direct path failed");
            false
        }
        Err(_) => {
            tracing::debug!(peer = %peer.short(), %observed, "direct path timed out");
            false
        }
    }
}
