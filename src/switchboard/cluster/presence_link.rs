//! The presence tracker's QUIC transport: how a switchboard cluster's trackers gossip.
//!
//! Each authenticated connection to another node carries presence frames on one long-lived
//! unidirectional stream per direction, each frame a 4-byte length and the tracker's opaque
//! bytes. Sends are fire-and-forget into a bounded per-link queue (gossip tolerates loss;
//! anti-entropy repairs it); a full queue refuses the frame rather than grow. The node name is
//! the peer's proven key, so the tracker's sender names are authenticated by TLS.

use std::sync::Arc;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::limits::{PRESENCE_FRAME_BYTES_MAX, PRESENCE_LINK_QUEUE};
use crate::net::stream;
use crate::presence::driver::transport::{Inbound, Transport, TransportError};
use crate::presence::ReplicaName;

struct Link {
    queue: mpsc::Sender<Bytes>,
    tasks: [JoinHandle<()>; 2],
    stable_id: usize,
}

impl Drop for Link {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Presence links to the other nodes of a cluster. Cheap to clone; clones share the links.
#[derive(Clone)]
pub struct QuicPresence {
    local: ReplicaName,
    links: Arc<DashMap<ReplicaName, Link>>,
}

impl QuicPresence {
    /// No links yet; this node is `local`.
    pub fn new(local: ReplicaName) -> Self {
        QuicPresence {
            local,
            links: Arc::new(DashMap::new()),
        }
    }

    /// Carry presence over `conn` to and from node `peer`, delivering inbound frames to
    /// `inbound`. Replaces an older link to the same node.
    pub fn attach(&self, peer: ReplicaName, conn: quinn::Connection, inbound: Arc<dyn Inbound>) {
        let (queue, rx) = mpsc::channel(PRESENCE_LINK_QUEUE);
        let sender = tokio::spawn(send_loop(conn.clone(), rx));
        let receiver = tokio::spawn(receive_loop(
            conn.clone(),
            peer.clone(),
            Arc::clone(&inbound),
            self.clone(),
        ));
        let link = Link {
            queue,
            tasks: [sender, receiver],
            stable_id: conn.stable_id(),
        };
        self.links.insert(peer.clone(), link);
        inbound.peer_connected(peer);
    }

    /// Drop the link to `peer` if it is still the one over connection `stable_id`.
    pub fn detach(&self, peer: &ReplicaName, stable_id: usize) {
        self.links
            .remove_if(peer, |_, link| link.stable_id == stable_id);
    }
}

impl Transport for QuicPresence {
    fn local(&self) -> ReplicaName {
        self.local.clone()
    }

    fn peers(&self) -> Vec<ReplicaName> {
        self.links.iter().map(|l| l.key().clone()).collect()
    }

    fn send(&self, to: &ReplicaName, frame: Bytes) -> Result<(), TransportError> {
        let link = self
            .links
            .get(to)
            .ok_or_else(|| TransportError::Unreachable(to.clone()))?;
        link.queue.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => TransportError::Full(to.clone()),
            mpsc::error::TrySendError::Closed(_) => TransportError::Unreachable(to.clone()),
        })
    }
}

async fn send_loop(conn: quinn::Connection, mut frames: mpsc::Receiver<Bytes>) {
    let Ok(mut send) = conn.open_uni().await else {
        return;
    };
    while let Some(frame) = frames.recv().await {
        if frame.len() > PRESENCE_FRAME_BYTES_MAX as usize {
            tracing::warn!(len = frame.len(), "presence frame over the bound; dropped");
            continue;
        }
        let mut bytes = Vec::with_capacity(4 + frame.len());
        bytes.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&frame);
        if stream::write_raw(&mut send, &bytes).await.is_err() {
            return;
        }
    }
}

async fn receive_loop(
    conn: quinn::Connection,
    peer: ReplicaName,
    inbound: Arc<dyn Inbound>,
    links: QuicPresence,
) {
    let stable_id = conn.stable_id();
    if let Ok(mut recv) = conn.accept_uni().await {
        while let Ok(Some(body)) = stream::read_frame_raw(&mut recv, PRESENCE_FRAME_BYTES_MAX).await
        {
            inbound.deliver(peer.clone(), Bytes::from(body));
        }
    }
    links.detach(&peer, stable_id);
}
