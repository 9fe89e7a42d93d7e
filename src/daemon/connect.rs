//! `kith connect [ID@]HOST:PORT`: dial a peer now.
//!
//! With an id, the peer must prove that key. With an address alone the key is learned on first
//! use, as SSH does with known hosts: the dial expects this node's own key, which no other node
//! can prove, so the handshake fails with the key the peer *did* prove; the second dial pins it.

use std::net::SocketAddr;

use crate::daemon::listener::start_peer;
use crate::daemon::peer::{punch, Direction, PeerContext};
use crate::daemon::uplink::link::SbLinkMsg;
use crate::identity::FeedId;
use crate::limits::INTRODUCTION_TIMEOUT;
use crate::net::NetError;
use ractor::rpc::CallResult;

/// Dial `target` and start a connection actor; returns the peer's id. A bare `@ID…ed25519`
/// is reached through the switchboards: introduced, then dialled over the relay.
pub async fn connect(ctx: &PeerContext, target: &str) -> Result<FeedId, String> {
    if let Ok(id) = target.parse::<FeedId>() {
        return connect_relayed(ctx, id).await;
    }
    let (pinned, host) = match target.rsplit_once('@') {
        Some((id, host)) if id.starts_with('@') => {
            (Some(id.parse::<FeedId>().map_err(|e| e.to_string())?), host)
        }
        _ => (None, target),
    };
    let addr = resolve(host).await?;
    let key = match pinned {
        Some(id) => id.verifying_key().map_err(|e| e.to_string())?,
        None => learn_key(ctx, addr).await?,
    };
    let peer = FeedId::from(key);
    if ctx.node.rolodex.is_blocked(&peer) {
        return Err(format!(
            "{peer} is blocked; run `kith unblock {peer}` first"
        ));
    }
    if ctx.connections.contains(&peer) {
        return Ok(peer);
    }
    let (conn, _) = ctx
        .endpoint
        .dial(addr, key)
        .await
        .map_err(|e| format!("dialling {addr}: {e}"))?;
    start_peer(ctx, conn, peer, Direction::Outbound).await?;
    Ok(peer)
}

async fn connect_relayed(ctx: &PeerContext, peer: FeedId) -> Result<FeedId, String> {
    if ctx.node.rolodex.is_blocked(&peer) {
        return Err(format!(
            "{peer} is blocked; run `kith unblock {peer}` first"
        ));
    }
    if ctx.connections.contains(&peer) {
        return Ok(peer);
    }
    let links = ctx.relays.links();
    if links.is_empty() {
        return Err("no switchboard is connected; start the daemon with --switchboard HOST:PORT, or give HOST:PORT".into());
    }
    let key = peer.verifying_key().map_err(|e| e.to_string())?;
    let mut reasons = Vec::new();
    for link in links {
        let relayed = match link
            .call(
                |port| SbLinkMsg::Introduce(peer, port),
                Some(INTRODUCTION_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(Ok(relayed))) => relayed,
            Ok(CallResult::Success(Err(reason))) => {
                reasons.push(reason);
                continue;
            }
            _ => {
                reasons.push("a switchboard link did not answer".into());
                continue;
            }
        };
        if let Some(observed) = relayed.observed {
            if punch(ctx, peer, observed).await {
                return Ok(peer);
            }
        }
        match relayed.endpoint.dial(relayed.addr, key).await {
            Ok((conn, _)) => {
                start_peer(ctx, conn, peer, Direction::Outbound).await?;
                return Ok(peer);
            }
            Err(e) => reasons.push(format!("relayed dial failed: {e}")),
        }
    }
    Err(format!(
        "could not reach {peer} through the switchboards: {}",
        reasons.join("; ")
    ))
}

async fn resolve(host: &str) -> Result<SocketAddr, String> {
    let bad = || format!("`{host}` is not an address: expected HOST:PORT or @ID@HOST:PORT");
    let mut addrs = tokio::net::lookup_host(host).await.map_err(|_| bad())?;
    addrs.next().ok_or_else(bad)
}

async fn learn_key(
    ctx: &PeerContext,
    addr: SocketAddr,
) -> Result<ed25519_dalek::VerifyingKey, String> {
    let own = ctx.node.identity.signing_key().verifying_key();
    match ctx.endpoint.dial(addr, own).await {
        Err(NetError::PeerKeyMismatch(mismatch)) => Ok(mismatch.presented),
        Err(e) => Err(format!("dialling {addr}: {e}")),
        Ok(_) => Err("that address is this node itself".to_string()),
    }
}
