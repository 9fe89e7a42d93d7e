//! The other nodes of a switchboard's cluster, as places to send to: one bounded queue per
//! linked node, drained by that link's writer in batches (one stream write carries every frame
//! queued meanwhile, as Discord's Manifold sends one message per node instead of one per pid).
//!
//! A client of another node that a local client was introduced to is registered in the
//! [`Hub`](crate::switchboard::hub::Hub) with a [`NodeForward`] as its link, so the router treats local and
//! remote destinations alike: same pair check, same room check, same counters.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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
    /// Introductions (caller, callee) this node asked `node` for and `node` has not answered:
    /// an answer is taken only for one of these, so a node cannot make up introductions.
    asked: Mutex<HashSet<(FeedId, FeedId)>>,
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
        let asked = Mutex::default();
        self.by_node.insert(
            node,
            Linked {
                conn_id,
                out,
                asked,
            },
        );
        rx
    }

    /// The link over `conn_id` to `node` ended; false if a newer link took its place (and is
    /// left alone).
    pub fn detach(&self, node: &FeedId, conn_id: usize) -> bool {
        self.by_node
            .remove_if(node, |_, l| l.conn_id == conn_id)
            .is_some()
    }

    /// Queue a control message for every linked node; how many took it.
    pub fn send_all(&self, msg: &NodeMsg) -> usize {
        self.by_node
            .iter()
            .filter(|l| l.out.try_send(NodeOut::Msg(msg.clone())).is_ok())
            .count()
    }

    /// Queue a control message for `node`; false if it is not linked or its queue is full.
    pub fn send(&self, node: &FeedId, msg: NodeMsg) -> bool {
        self.by_node
            .get(node)
            .is_some_and(|l| l.out.try_send(NodeOut::Msg(msg)).is_ok())
    }

    /// Ask `node` to introduce local client `from` to its client `to`; false if `node` is not
    /// linked, its queue is full, or [`limits::NODE_INTRODUCTIONS_PENDING_MAX`] are pending.
    pub fn introduce(&self, node: &FeedId, from: FeedId, to: FeedId, observed: SocketAddr) -> bool {
        let Some(linked) = self.by_node.get(node) else {
            return false;
        };
        let mut asked = linked.asked.lock().unwrap_or_else(|p| p.into_inner());
        if asked.len() >= limits::NODE_INTRODUCTIONS_PENDING_MAX && !asked.contains(&(from, to)) {
            return false;
        }
        let msg = NodeMsg::Introduce { from, to, observed };
        let sent = linked.out.try_send(NodeOut::Msg(msg)).is_ok();
        if sent {
            asked.insert((from, to));
        }
        sent
    }

    /// `node` answers the introduction of `caller` to `callee`: true (and forgotten) if this
    /// node asked for it, false if nobody did.
    pub fn answered(&self, node: &FeedId, caller: FeedId, callee: FeedId) -> bool {
        self.by_node.get(node).is_some_and(|linked| {
            let mut asked = linked.asked.lock().unwrap_or_else(|p| p.into_inner());
            asked.remove(&(caller, callee))
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switchboard::hub::Hub;

    fn id(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7878))
    }

    #[test]
    fn an_answer_is_taken_only_for_an_introduction_this_node_asked_for() {
        let nodes = NodeLinks::default();
        let (node, other) = (id(9), id(8));
        let _rx = nodes.attach(node, 1);
        let _rx2 = nodes.attach(other, 2);
        assert!(nodes.introduce(&node, id(1), id(2), addr()));
        assert!(
            !nodes.answered(&other, id(1), id(2)),
            "asked of another node"
        );
        assert!(!nodes.answered(&node, id(2), id(1)), "the other way round");
        assert!(nodes.answered(&node, id(1), id(2)));
        assert!(!nodes.answered(&node, id(1), id(2)), "only once");
        assert!(!nodes.introduce(&id(7), id(1), id(2), addr()), "not linked");
    }

    #[test]
    fn pending_introductions_to_one_node_are_bounded() {
        let nodes = NodeLinks::default();
        let node = id(9);
        let _rx = nodes.attach(node, 1);
        let mut asked = 0;
        for n in 0..u16::MAX {
            let mut caller = [1u8; 32];
            caller[..2].copy_from_slice(&n.to_be_bytes());
            let caller = FeedId(caller);
            if !nodes.introduce(&node, caller, id(2), addr()) {
                break;
            }
            asked += 1;
        }
        assert_eq!(
            asked,
            limits::NODE_INTRODUCTIONS_PENDING_MAX.min(limits::NODE_QUEUE_MAX)
        );
    }

    #[tokio::test]
    async fn a_node_delivers_only_for_its_own_clients() {
        let (hub, nodes) = (Hub::default(), NodeLinks::default());
        let (node, rogue, local) = (id(9), id(8), id(1));
        let _rx = nodes.attach(node, 1);
        let (a, mut a_rx) = mpsc::channel(8);
        let sink: Arc<dyn DatagramLink> = Arc::new(NodeForward { to: local, out: a });
        hub.add(local, sink).unwrap();
        let remote = id(2);
        let link = nodes.forward(&node, remote).unwrap();
        hub.add_remote(remote, node, link).unwrap();
        hub.open_pair(local, remote).unwrap();
        let frame = |from: FeedId| bytes::Bytes::from([&from.0[..], b"hi"].concat());
        assert!(
            !hub.deliver(&rogue, local, frame(remote)),
            "not the node of the source"
        );
        assert!(
            !hub.deliver(&node, local, frame(id(3))),
            "not a client of that node"
        );
        assert!(hub.deliver(&node, local, frame(remote)));
        assert!(matches!(a_rx.try_recv(), Ok(NodeOut::Packet(_))));
        assert!(a_rx.try_recv().is_err(), "exactly one frame got through");
    }
}
