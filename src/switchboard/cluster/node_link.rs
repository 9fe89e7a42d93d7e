//! The control stream between two switchboard nodes of a cluster: introductions between clients
//! of different nodes, and the relayed frames between them, batched per node.
//!
//! Both ends run the same two tasks on the link's hello stream, started by whoever holds the
//! connection (the dialling node's [`link`](super::link), the accepting node's
//! [`session`](crate::switchboard::session)): a writer that drains the node's queue
//! ([`NodeLinks`](crate::switchboard::cluster::nodes::NodeLinks)) and writes everything queued meanwhile in
//! one stream write, and a reader that acts on what the other node sends (introductions,
//! relayed frames, and revoked views of presence: [`NodeMsg::Revoke`]). Presence travels on
//! its own stream ([`QuicPresence`](crate::switchboard::cluster::presence_link::QuicPresence)).

use bytes::Bytes;

use crate::identity::FeedId;
use crate::limits::{NODE_BATCH_BYTES_MAX, PRESENCE_VISIBLE_IDS_MAX, SB_FRAME_BYTES_MAX};
use crate::net::{frame, stream};
use crate::runtime::OwnedTask;
use crate::switchboard::cluster::nodes::NodeOut;
use crate::switchboard::context::{Counters, SbContext};
use crate::switchboard::intro::{IntroError, RelayError};
use crate::switchboard::messages::{Asker, SbSessionMsg};
use crate::wire::switchboard::{NodeMsg, NodePacket, TrackedMeta, PEERS_TOPIC};

/// Items the writer takes from the queue per batch.
const BATCH_ITEMS: usize = 256;

/// A running node link; dropping it stops its tasks and, unless a newer link to the same node
/// took its place, forgets the clients of that node the hub knew.
pub struct NodeLink {
    ctx: SbContext,
    node: FeedId,
    conn_id: usize,
    _tasks: [OwnedTask; 2],
}

impl Drop for NodeLink {
    fn drop(&mut self) {
        if self.ctx.nodes.detach(&self.node, self.conn_id) {
            self.ctx.hub.remove_node(&self.node);
        }
    }
}

/// Start the link to `node` on `conn`'s hello stream.
pub fn start(
    ctx: &SbContext,
    node: FeedId,
    conn: &quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) -> NodeLink {
    let conn_id = conn.stable_id();
    let queue = ctx.nodes.attach(node, conn_id);
    let tasks = [
        OwnedTask::spawn(write_loop(send, queue)),
        OwnedTask::spawn(read_loop(ctx.clone(), node, recv)),
    ];
    NodeLink {
        ctx: ctx.clone(),
        node,
        conn_id,
        _tasks: tasks,
    }
}

async fn write_loop(mut send: quinn::SendStream, mut queue: tokio::sync::mpsc::Receiver<NodeOut>) {
    let mut items = Vec::with_capacity(BATCH_ITEMS);
    while queue.recv_many(&mut items, BATCH_ITEMS).await > 0 {
        let Ok(batch) = encode_batch(items.drain(..)) else {
            return;
        };
        if stream::write_raw(&mut send, &batch).await.is_err() {
            return;
        }
    }
}

/// Frames for `items` back to back; neighbouring packets share one [`NodeMsg::Packets`] of at
/// most [`NODE_BATCH_BYTES_MAX`] bytes.
fn encode_batch(items: impl Iterator<Item = NodeOut>) -> Result<Vec<u8>, frame::FrameError> {
    let mut out = Vec::new();
    let mut packets: Vec<NodePacket> = Vec::new();
    let mut bytes = 0;
    let flush = |packets: &mut Vec<NodePacket>, bytes: &mut usize, out: &mut Vec<u8>| {
        *bytes = 0;
        match packets.is_empty() {
            true => Ok(()),
            false => frame::encode(
                &NodeMsg::Packets(std::mem::take(packets)),
                SB_FRAME_BYTES_MAX,
            )
            .map(|f| out.extend(f)),
        }
    };
    for item in items {
        match item {
            NodeOut::Packet(packet) => {
                bytes += packet.frame.len();
                packets.push(packet);
                if bytes >= NODE_BATCH_BYTES_MAX {
                    flush(&mut packets, &mut bytes, &mut out)?;
                }
            }
            NodeOut::Msg(msg) => {
                flush(&mut packets, &mut bytes, &mut out)?;
                out.extend(frame::encode(&msg, SB_FRAME_BYTES_MAX)?);
            }
        }
    }
    flush(&mut packets, &mut bytes, &mut out)?;
    Ok(out)
}

async fn read_loop(ctx: SbContext, node: FeedId, mut recv: quinn::RecvStream) {
    while let Ok(Some(msg)) = stream::read_frame::<NodeMsg>(&mut recv, SB_FRAME_BYTES_MAX).await {
        on_message(&ctx, node, msg);
    }
}

/// Count and log a message `node` had no right to send; it is dropped.
fn refuse(ctx: &SbContext, node: &FeedId, what: &str) {
    Counters::bump(&ctx.counters.node_msgs_refused);
    tracing::warn!(node = %node.short(), "dropped from a cluster node: {what}");
}

/// Where presence puts a client of the cluster, as seen by this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Home {
    /// Connected to the node that speaks for it.
    Here,
    /// Connected to another node: the node speaking for it lies.
    Elsewhere,
    /// Not in this node's presence yet (its join may still be on its way here).
    Unknown,
}

/// Where presence says `client` is connected, against the `node` speaking for it (a node
/// speaks only for its own clients).
fn home_of(ctx: &SbContext, client: &FeedId, node: &FeedId) -> Home {
    let node = node.to_string();
    let homes: Vec<String> = ctx
        .tracker
        .get_by_key(PEERS_TOPIC, &client.to_string())
        .into_iter()
        .filter_map(|p| TrackedMeta::decode(&p.row.meta))
        .map(|meta| meta.peer.node)
        .collect();
    match homes {
        _ if homes.contains(&node) => Home::Here,
        _ if homes.is_empty() => Home::Unknown,
        _ => Home::Elsewhere,
    }
}

/// Tell `node` that its client `caller` cannot be introduced to `callee`, and why.
fn answer_refused(ctx: &SbContext, node: FeedId, caller: FeedId, callee: FeedId, reason: String) {
    let answer = NodeMsg::Answer {
        callee,
        caller,
        result: Err(reason),
        declined: false,
    };
    ctx.nodes.send(&node, answer);
}

fn on_message(ctx: &SbContext, node: FeedId, msg: NodeMsg) {
    match msg {
        NodeMsg::Answer { caller, callee, .. } if !ctx.nodes.answered(&node, caller, callee) => {
            refuse(
                ctx,
                &node,
                "an answer to an introduction nobody asked it for",
            );
        }
        NodeMsg::Introduce { from, to, observed } => match home_of(ctx, &from, &node) {
            // The caller's join has not reached this node yet (or only its old one has: it
            // failed over from a node that died, and presence here still places it there):
            // refuse, so that it asks again soon, rather than ask the callee on the word of a
            // node about an id not seen there. Nothing is asked or opened on its word.
            Home::Unknown | Home::Elsewhere => answer_refused(
                ctx,
                node,
                from,
                to,
                format!("{from} is not known on the callee's switchboard node yet; try again in a moment"),
            ),
            Home::Here => {
                let asker = Asker::Node(node);
                let asked = ctx.sessions.get(&to).is_some_and(|s| {
                    s.cast(SbSessionMsg::IntroRequest {
                        from,
                        asker,
                        observed,
                    })
                    .is_ok()
                });
                if !asked {
                    answer_refused(ctx, node, from, to, IntroError::NotInCluster(to).to_string());
                }
            }
        },
        NodeMsg::Answer {
            callee,
            caller,
            result,
            declined,
        } => {
            let result = result
                .map_err(|reason| match declined {
                    true => IntroError::RemoteDeclined(reason),
                    false => IntroError::Remote(reason),
                })
                .and_then(|observed| open_remote(ctx, node, caller, callee).map(|()| observed));
            if let Some(session) = ctx.sessions.get(&caller) {
                let _ = session.cast(SbSessionMsg::IntroResult { to: callee, result });
            }
        }
        NodeMsg::Revoke { watchers, .. } if watchers.len() > PRESENCE_VISIBLE_IDS_MAX => {
            refuse(ctx, &node, "a revocation longer than any allow-list");
        }
        NodeMsg::Revoke {
            owner,
            since_ms,
            seq,
            watchers,
        } => match home_of(ctx, &owner, &node) {
            Home::Elsewhere => refuse(ctx, &node, "a revocation for a client that is not its own"),
            // Not here yet: its presence, with the narrowed list, will come together.
            Home::Unknown => {}
            Home::Here => {
                let now = std::time::Instant::now();
                for watcher in watchers {
                    ctx.watchers.revoke(owner, watcher, since_ms, seq, now);
                    if let Some(session) = ctx.sessions.get(&watcher) {
                        let _ = session.cast(SbSessionMsg::Notice(owner));
                    }
                }
            }
        },
        NodeMsg::Packets(packets) => {
            for packet in packets {
                // Not logged: a packet in flight when its pair closed is refused the same way.
                if !ctx.hub.deliver(&node, packet.to, Bytes::from(packet.frame)) {
                    Counters::bump(&ctx.counters.node_msgs_refused);
                }
            }
        }
    }
}

/// Let local client `local` and `remote`, a client of `node`, exchange packets.
pub fn open_remote(
    ctx: &SbContext,
    node: FeedId,
    local: FeedId,
    remote: FeedId,
) -> Result<(), IntroError> {
    let link = ctx
        .nodes
        .forward(&node, remote)
        .ok_or(IntroError::CannotRelay(RelayError::NodeNotLinked))?;
    ctx.hub.add_remote(remote, node, link)?;
    ctx.hub.open_pair(local, remote)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::FrameDecoder;

    fn packet(n: u8, len: usize) -> NodeOut {
        NodeOut::Packet(NodePacket {
            to: FeedId([n; 32]),
            frame: vec![n; len],
        })
    }

    fn decode_all(mut bytes: &[u8]) -> Vec<NodeMsg> {
        let mut msgs = Vec::new();
        while !bytes.is_empty() {
            let mut decoder = FrameDecoder::new(SB_FRAME_BYTES_MAX);
            let msg: NodeMsg = decoder
                .decode(&mut bytes)
                .expect("frame")
                .expect("whole frame");
            msgs.push(msg);
        }
        msgs
    }

    #[test]
    fn neighbouring_packets_share_a_message_and_control_messages_keep_their_place() {
        let answer = NodeMsg::Answer {
            callee: FeedId([9; 32]),
            caller: FeedId([8; 32]),
            result: Err("no".into()),
            declined: true,
        };
        let items = vec![
            packet(1, 100),
            packet(2, 100),
            NodeOut::Msg(answer.clone()),
            packet(3, 100),
        ];
        let msgs = decode_all(&encode_batch(items.into_iter()).expect("encode"));
        assert_eq!(msgs.len(), 3);
        assert!(
            matches!(&msgs[0], NodeMsg::Packets(p) if p.len() == 2 && p[1].to == FeedId([2; 32]))
        );
        assert_eq!(msgs[1], answer);
        assert!(matches!(&msgs[2], NodeMsg::Packets(p) if p.len() == 1));
    }

    #[test]
    fn a_batch_is_split_at_the_byte_bound() {
        let n = NODE_BATCH_BYTES_MAX / 1_000 + 5;
        let items = (0..n).map(|i| packet(i as u8, 1_000));
        let msgs = decode_all(&encode_batch(items).expect("encode"));
        assert_eq!(msgs.len(), 2);
        let total: usize = msgs
            .iter()
            .map(|m| match m {
                NodeMsg::Packets(p) => p.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(total, n);
    }
}
