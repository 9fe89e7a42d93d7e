//! The listener: accepts peer connections on the node's QUIC endpoint.
//!
//! An accept loop, owned by the actor, takes each incoming connection; a short task per
//! connection finishes the TLS handshake (the peer proves its key) and starts a peer connection
//! actor for it through the peers dynamic-supervisor handle. Which handshakes are taken on, and
//! for how long, is decided by [`crate::net::admission`] (see [`accept_each`]). Blocked ids are
//! refused in the hello, by the peer connection itself, so the refusal has a reason the other
//! side can read.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::daemon::connection::{admit, hello, PeerConn, PeerConnArgs};
use crate::daemon::context::PeerContext;
use crate::daemon::error::StartPeerError;
use crate::daemon::peer::Direction;
use crate::identity::FeedId;
use crate::net::accept::accept_each;
use crate::net::CloseCode;
use crate::runtime::OwnedTask;

/// Messages to the listener.
pub enum ListenerMsg {
    /// The endpoint closed; the listener fails so that it is restarted.
    EndpointClosed,
}

/// The listener actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Listener;

/// The listener's state: its accept loop, aborted with it.
pub struct ListenerState {
    _accept: OwnedTask,
}

impl Actor for Listener {
    type Msg = ListenerMsg;
    type State = ListenerState;
    type Arguments = PeerContext;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        tracing::info!(addr = ?ctx.endpoint.local_addr().ok(), "listening for peers");
        Ok(ListenerState {
            _accept: OwnedTask::spawn(accept_loop(ctx, myself)),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ListenerMsg::EndpointClosed => Err("the peer endpoint closed".into()),
        }
    }
}

async fn accept_loop(ctx: PeerContext, myself: ActorRef<ListenerMsg>) {
    let endpoint = Arc::clone(&ctx.endpoint);
    accept_each(&endpoint, move |conn, peer| {
        let ctx = ctx.clone();
        async move {
            if let Err(e) = start_peer(&ctx, conn, peer, Direction::Inbound).await {
                tracing::debug!(peer = %peer.short(), error = %e, "inbound connection not started");
            }
        }
    })
    .await;
    let _ = myself.cast(ListenerMsg::EndpointClosed);
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
