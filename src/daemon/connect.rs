//! `kith connect [ID@]HOST:PORT`: dial a peer now.
//!
//! With an id, the peer must prove that key. With an address alone the key is learned on first
//! use, as SSH does with known hosts ([`crate::net::pin`]): the dial expects this node's own key,
//! which no other node can prove, so the handshake fails with the key the peer *did* prove; the
//! second dial pins it. It starts a connection actor, so it sits beside the actors, above the
//! peer plumbing.

use std::net::SocketAddr;

use crate::daemon::context::PeerContext;
use crate::daemon::error::ConnectError;
use crate::daemon::listener::start_peer;
use crate::daemon::peer::Direction;
use crate::daemon::punch::through_switchboards;
use crate::identity::FeedId;
use crate::net::pin::pin;

/// Dial `target` and start a connection actor; returns the peer's id. A bare `@ID…ed25519`
/// is reached through the switchboards: introduced, then dialled over the relay at once (and
/// punched beside it when the peer lets addresses cross).
pub async fn connect(ctx: &PeerContext, target: &str) -> Result<FeedId, ConnectError> {
    if let Ok(id) = target.parse::<FeedId>() {
        return connect_relayed(ctx, id).await;
    }
    let (pinned, host) = match target.rsplit_once('@') {
        Some((id, host)) if id.starts_with('@') => (Some(id.parse::<FeedId>()?), host),
        _ => (None, target),
    };
    let addr = resolve(host).await?;
    let pinned = pinned.map(|id| id.verifying_key()).transpose()?;
    let key = pin(&ctx.endpoint, addr, pinned)
        .await
        .map_err(|e| ConnectError::probe(addr, e))?
        .key;
    let peer = FeedId::from(key);
    if ctx.node.rolodex.is_blocked(&peer) {
        return Err(ConnectError::Blocked(peer));
    }
    if ctx.connections.contains(&peer) {
        return Ok(peer);
    }
    let (conn, _) = ctx
        .endpoint
        .dial(addr, key)
        .await
        .map_err(|source| ConnectError::Dial { addr, source })?;
    start_peer(ctx, conn, peer, Direction::Outbound).await?;
    Ok(peer)
}

async fn connect_relayed(ctx: &PeerContext, peer: FeedId) -> Result<FeedId, ConnectError> {
    if ctx.node.rolodex.is_blocked(&peer) {
        return Err(ConnectError::Blocked(peer));
    }
    if ctx.connections.contains(&peer) {
        return Ok(peer);
    }
    if ctx.relays.links().is_empty() {
        return Err(ConnectError::NoSwitchboard);
    }
    peer.verifying_key()?;
    // Relay first, punching beside it when the callee lets addresses cross.
    through_switchboards(ctx, peer)
        .await
        .map(|()| peer)
        .map_err(|reasons| ConnectError::Unreachable { peer, reasons })
}

async fn resolve(host: &str) -> Result<SocketAddr, ConnectError> {
    let bad = || ConnectError::NotAnAddress(host.to_string());
    let mut addrs = tokio::net::lookup_host(host).await.map_err(|_| bad())?;
    addrs.next().ok_or_else(bad)
}
