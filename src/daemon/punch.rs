//! Hole punching: after an introduction, both sides try a direct path to the address the
//! switchboard saw the other at, from the same UDP socket they use for everything else. Where it
//! works (no NAT, or NATs that keep the mapping), the connection goes direct and the traffic
//! leaves the switchboard; where it does not, the relayed path carries it.
//!
//! The caller tries first and briefly ([`PUNCH_TIMEOUT`]) before it dials through the relay; the
//! callee dials the caller at the same time, which opens its own NAT's mapping toward the
//! caller. If both succeed, the connections table keeps one (the tie-break in `Connections`).
//!
//! Behind a NAT that filters by address and port, the first packet of whichever side sends first
//! dies at the other side's NAT (no mapping yet), so often only one of the two dials gets
//! through in time, and it may be the callee's. [`punch`] therefore reports whether the peer is
//! connected once its own attempt ends, not whether its own dial won (it may also have lost the
//! tie-break to the callee's): a caller that fell back to the relay while the direct path was
//! already up would handshake through the switchboard for nothing, and the tie-break
//! (`keep_new`) then has to drop that relayed connection for the direct one.

use std::net::SocketAddr;

use crate::daemon::context::PeerContext;
use crate::daemon::listener::start_peer;
use crate::daemon::peer::Direction;
use crate::identity::FeedId;
use crate::limits::PUNCH_TIMEOUT;

/// Try the direct path to `peer` at `observed`; true if the peer is now connected, by this dial
/// or by theirs (the callee's dial-back, or the caller's punch when this is the dial-back).
pub async fn punch(ctx: &PeerContext, peer: FeedId, observed: SocketAddr) -> bool {
    let Ok(key) = peer.verifying_key() else {
        return false;
    };
    let dial = tokio::time::timeout(PUNCH_TIMEOUT, ctx.endpoint.dial(observed, key)).await;
    match dial {
        Ok(Ok((conn, _))) => {
            if let Err(e) = start_peer(ctx, conn, peer, Direction::Outbound).await {
                tracing::debug!(peer = %peer.short(), %observed, error = %e, "direct connection not kept");
            }
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer.short(), %observed, error = %e, "direct path failed")
        }
        Err(_) => tracing::debug!(peer = %peer.short(), %observed, "direct path timed out"),
    }
    ctx.connections.contains(&peer)
}
