//! The other nodes of a switchboard's cluster, as places to send to: one bounded queue per
//! linked node, drained by that link's writer in batches (one stream write carries every frame
//! queued meanwhile, as Discord's Manifold sends one message per node instead of one per pid).
//!
//! A client of another node that a local client was introduced to is registered in the
//! [`Hub`](super::hub::Hub) with a [`NodeForward`] as its link, so the router treats local and
//! remote destinations alike: same pair check, same room check, same counters.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::identity::FeedId;
use crate::limits;
use crate::relay::{DatagramLink, LinkError};
use crate::wire::switchboard::{NodeMsg, NodePacket};

/// What a link's writer sends to its node.
#[derive(Debug)]
pub enum NodeOut {
    /// A control message.
    Msg(NodeMsg),
    /// A relayed frame (batched with its neighbours into one [`NodeMsg::Packets`]).
    Packet(NodePacket),
}

struct Linked {
    conn_id: usize,
    out: mpsc::Sender<NodeOut>,
}

/// Linked nodes by id. Cheap to clone; clones share it.
#[derive(Clone, Default)]
pub struct NodeLinks {
    by_node: Arc<DashMap<FeedId, Linked>>,
}

impl NodeLinks {
    /// Node `node` is linked over connection `conn_id`; returns the queue's receiving end for the
    /// link's writer. A newer link to the same node replaces an older one.
    pub fn attach(&self, node: FeedId, conn_id: usize) -> mpsc::Receiver<NodeOut> {
        let (out, rx) = mpsc::channel(limits::NODE_QUEUE_MAX);
        self.by_node.insert(node, Linked { conn_id, out });
        rx
    }

    /// The link over `conn_id` to `node` ended; false if a newer link took its place (and is
    /// left alone).
    pub fn detach(&self, node: &FeedId, conn_id: usize) -> bool {
        self.by_node
            .remove_if(node, |_, l| l.conn_id == conn_id)
            .is_some()
    }

    /// Queue a control message for `node`; false if it is not linked or its queue is full.
    pub fn send(&self, node: &FeedId, msg: NodeMsg) -> bool {
        self.by_node
            .get(node)
            .is_some_and(|l| l.out.try_send(NodeOut::Msg(msg)).is_ok())
    }

    /// A link for client `to` of `node`, for the hub; `None` if `node` is not linked.
    pub fn forward(&self, node: &FeedId, to: FeedId) -> Option<Arc<dyn DatagramLink>> {
        let out = self.by_node.get(node)?.out.clone();
        Some(Arc::new(NodeForward { to, out }))
    }

    /// Whether `node` is linked now.
    pub fn is_linked(&self, node: &FeedId) -> bool {
        self.by_node.contains_key(node)
    }
}

/// The hub's link to a client of another node: frames go into that node's queue.
pub struct NodeForward {
    to: FeedId,
    out: mpsc::Sender<NodeOut>,
}

impl DatagramLink for NodeForward {
    fn send(&self, frame: bytes::Bytes) -> Result<(), LinkError> {
        let packet = NodePacket {
            to: self.to,
            frame: frame.to_vec(),
        };
        self.out
            .try_send(NodeOut::Packet(packet))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => LinkError::Full,
                mpsc::error::TrySendError::Closed(_) => LinkError::Closed,
            })
    }

    fn max_size(&self) -> Option<usize> {
        Some(limits::RELAY_FRAME_BYTES_MAX)
    }

    /// Free slots, each good for a frame of the largest size.
    fn room(&self) -> usize {
        self.out.capacity() * limits::RELAY_FRAME_BYTES_MAX
    }
}
