//! A session's I/O with its peer: the bounded queue of answers and the task that writes it, the
//! task that reads the peer's frames into the actor, and the task that relays its datagrams.
//!
//! Why apart from the actor: these loops run as tasks of their own and touch only the
//! connection and the actor's handle; the actor file stays a driver.
//!
//! Memory per session counts (a switchboard holds tens of thousands, most of them idle): the
//! queue is a `futures-channel` one, which allocates per queued frame, rather than tokio's,
//! which allocates about 1.5 KiB per channel up front (a 32-slot block and a cache-padded
//! header), idle or not.

use std::sync::Arc;

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::StreamExt;
use ractor::ActorRef;

use crate::limits::SB_FRAME_BYTES_MAX;
use crate::net::{frame, stream};
use crate::relay::config::check_link;
use crate::relay::DatagramLink;
use crate::runtime::OwnedTask;
use crate::switchboard::messages::SbSessionMsg;
use crate::wire::switchboard::{ClientMsg, ServerMsg};

use super::SbSessionState;

/// Relay this peer's datagrams, if its connection can carry them: the hub sends to this peer on
/// its connection, and a task routes what this peer sends through the hub.
pub(super) fn start_relay(state: &mut SbSessionState) {
    if let Err(e) = check_link(&state.conn) {
        tracing::debug!(peer = %state.peer.short(), error = %e, "no relaying for this peer");
        return;
    }
    state.ctx.hub.remove(&state.peer);
    let link: Arc<dyn DatagramLink> = Arc::new(state.conn.clone());
    if state.ctx.hub.add(state.peer, link).is_err() {
        return;
    }
    let (conn, hub, peer) = (state.conn.clone(), state.ctx.hub.clone(), state.peer);
    state.relay = Some(OwnedTask::spawn(async move {
        while let Ok(frame) = conn.read_datagram().await {
            hub.route(&peer, frame);
        }
    }));
}

/// Queue a message; false if the peer is not reading (queue full) or gone.
pub(super) fn send(state: &SbSessionState, msg: ServerMsg) -> bool {
    match frame::encode(&msg, SB_FRAME_BYTES_MAX) {
        Ok(bytes) => state.out.borrow_mut().try_send(Bytes::from(bytes)).is_ok(),
        Err(e) => {
            tracing::warn!(peer = %state.peer.short(), error = %e, "a message to the peer could not be encoded");
            false
        }
    }
}

/// Write the queued frames to the peer until the queue or the stream closes.
pub(super) async fn send_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(frames) = rx.next().await {
        if stream::write_raw(&mut send, &frames).await.is_err() {
            return;
        }
    }
}

/// Hand each frame the peer sends to the actor, waiting for it; tell the actor why it stopped.
pub(super) async fn read_loop(mut recv: quinn::RecvStream, myself: ActorRef<SbSessionMsg>) {
    let reason = loop {
        match stream::read_frame::<ClientMsg>(&mut recv, SB_FRAME_BYTES_MAX).await {
            // The call is boxed: this loop waits in the read for the session's life, and an
            // inline call future would make every idle session's task larger.
            Ok(Some(msg)) => {
                match Box::pin(myself.call(|reply| SbSessionMsg::Frame(msg, reply), None)).await {
                    Ok(ractor::rpc::CallResult::Success(true)) => continue,
                    _ => return,
                }
            }
            Ok(None) => break "peer finished".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    let _ = myself.cast(SbSessionMsg::Closed(reason));
}
