//! The daemon's side of the listener: what it starts for each peer connection accepted on the
//! node's QUIC endpoint (the actor itself is the shared [`crate::net::listener::Listener`]).
//!
//! An accept loop, owned by the listener actor, takes each incoming connection; a short task per
//! connection finishes the TLS handshake (the peer proves its key) and starts a peer connection
//! actor for it through the peers dynamic-supervisor handle. Which handshakes are taken on, and
//! for how long, is decided by [`crate::net::admission`] (see [`crate::net::accept::accept_each`]). Blocked ids are
//! refused in the hello, by the peer connection itself, so the refusal has a reason the other
//! side can read.

use std::sync::Arc;

use crate::daemon::connection::{admit, hello, PeerConn, PeerConnArgs};
use crate::daemon::context::PeerContext;
use crate::daemon::error::StartPeerError;
use crate::daemon::peer::Direction;
use crate::identity::FeedId;
use crate::net::listener::{ListenerArgs, OnAccept};
use crate::net::CloseCode;

/// The shared listener's arguments for a daemon: every authenticated connection gets its hello
/// and, if admitted, a peer connection actor.
pub fn listener_args(ctx: PeerContext) -> ListenerArgs {
    let endpoint = Arc::clone(&ctx.endpoint);
    let on_accept: OnAccept = Arc::new(move |conn, peer| {
        let ctx = ctx.clone();
        Box::pin(async move {
            if let Err(e) = start_peer(&ctx, conn, peer, Direction::Inbound).await {
                tracing::debug!(peer = %peer.short(), error = %e, "inbound connection not started");
            }
        })
    });
    ListenerArgs {
        endpoint,
        role: "peers",
        on_accept,
    }
}

/// Numbers connection actors' child ids, once per process.
static CONNECTION_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Say hello on an authenticated connection, here in the caller's task, then start its
/// connection actor (a child of `peers`, with the restart type the tree gave its children).
pub async fn start_peer(
    ctx: &PeerContext,
    conn: quinn::Connection,
    peer: FeedId,
    direction: Direction,
) -> Result<(), StartPeerError> {
    let greeted = match hello(ctx, &conn, peer, direction).await {
        Ok(greeted) => greeted,
        // The peer finished its side first and closed this one: its other connection won.
        Err(StartPeerError::Hello { source, .. })
            if source.peer_close_code() == Some(CloseCode::Duplicate) =>
        {
            tracing::debug!(peer = %peer.short(), ?direction, "duplicate connection closed by the peer");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if !admit(ctx, &conn, peer, direction) {
        // Both sides dialled at once and the other connection won: the peer is connected.
        tracing::debug!(peer = %peer.short(), ?direction, "duplicate connection closed");
        return Ok(());
    }
    let args = PeerConnArgs {
        ctx: ctx.clone(),
        conn: conn.clone(),
        peer,
        direction,
        greeted: Arc::new(std::sync::Mutex::new(Some(greeted))),
    };
    // quinn's stable id is an address, reused once a closed connection is freed; a child id must
    // not collide with a dead child the supervisor may not have removed yet.
    let serial = CONNECTION_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let id = format!("peer:{}:{serial}", peer.short());
    match ctx
        .peers
        .start_worker(id, PeerConn, move || args.clone())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            crate::net::close::close(&conn, CloseCode::Normal);
            ctx.connections.remove(&peer, conn.stable_id());
            Err(e.into())
        }
    }
}
