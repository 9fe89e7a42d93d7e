//! The ractor driver of one [`Shard`]: timers, transport and subscribers around the sans-IO core.
//!
//! - Spawned by: [`super::pool::TrackerPool::start`], or by a supervision tree through
//!   [`ShardActor`] + [`ShardArgs`] (it has no children, so ractor's default supervision
//!   handler is never involved).
//! - Messages: [`ShardMsg`] (client calls, inbound frames, link events, its own tick).
//! - After each message it drains the shard's actions: frames go to the [`Transport`], diffs to
//!   the [`ShardView`] (readers) and to a bounded broadcast channel (subscribers). A slow
//!   subscriber lags and loses diffs; it never blocks replication.
//! - Time: milliseconds since the actor started, on tokio's clock (pausable in tests).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::incarnation::Incarnations;
use super::transport::Transport;
use super::view::ShardView;
use crate::presence::message::Envelope;
use crate::presence::options::Options;
use crate::presence::replica::Replica;
use crate::presence::shard::{Action, Shard, ShardError};
use crate::presence::types::{Diff, Meta, Millis, Owner, Presence, ReplicaName, ReplicaRef};

/// A meta-rewriting function for [`ShardMsg::Update`].
pub type UpdateFn = Box<dyn FnOnce(&Meta) -> Meta + Send>;

/// Messages of a shard actor.
pub enum ShardMsg {
    /// Track a presence.
    Track {
        /// Holder.
        owner: Owner,
        /// Topic.
        topic: String,
        /// Key.
        key: String,
        /// Meta.
        meta: Meta,
        /// Reply.
        reply: RpcReplyPort<Result<Presence, ShardError>>,
    },
    /// Untrack one presence (replies when done).
    Untrack {
        /// Holder.
        owner: Owner,
        /// Topic.
        topic: String,
        /// Key.
        key: String,
        /// Reply.
        reply: RpcReplyPort<()>,
    },
    /// Untrack every presence of an owner in this shard.
    UntrackOwner {
        /// Holder.
        owner: Owner,
        /// Reply.
        reply: RpcReplyPort<()>,
    },
    /// Replace a presence's meta.
    Update {
        /// Holder.
        owner: Owner,
        /// Topic.
        topic: String,
        /// Key.
        key: String,
        /// New meta from the old.
        f: UpdateFn,
        /// Reply.
        reply: RpcReplyPort<Result<Presence, ShardError>>,
    },
    /// A frame from another node.
    Inbound {
        /// Sending node.
        from: ReplicaName,
        /// Decoded frame.
        env: Envelope,
    },
    /// A link to a peer came (back) up.
    PeerConnected(ReplicaName),
    /// The heartbeat timer.
    Tick,
    /// The replica table (for status pages and tests).
    Replicas(RpcReplyPort<Vec<Replica>>),
    /// Announce a graceful shutdown, then stop.
    GracefulPermdown(RpcReplyPort<()>),
}

/// Start arguments of a shard actor.
#[derive(Clone)]
pub struct ShardArgs {
    /// This node's name.
    pub node: ReplicaName,
    /// Shard index.
    pub index: u16,
    /// Options (shared by the pool).
    pub opts: Options,
    /// Seed for the tick jitter.
    pub seed: u64,
    /// The network.
    pub transport: Arc<dyn Transport>,
    /// The read view this shard keeps current.
    pub view: Arc<ShardView>,
    /// Where this shard publishes its reference on every (re)start.
    pub slot: crate::runtime::Slot<ShardMsg>,
    /// Where diffs are published.
    pub diffs: broadcast::Sender<Arc<Diff>>,
    /// Where every (re)start takes its incarnation number.
    pub incarnations: Arc<Incarnations>,
}

/// The shard actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShardActor;

/// Runtime state of a shard actor.
pub struct ShardActorState {
    shard: Shard,
    args: ShardArgs,
    started: Instant,
}

impl ShardActorState {
    fn now(&self) -> Millis {
        Instant::now().duration_since(self.started).as_millis() as Millis
    }

    fn schedule_tick(&self, myself: &ActorRef<ShardMsg>) {
        let wait = self.shard.next_tick().saturating_sub(self.now());
        myself.send_after(Duration::from_millis(wait), || ShardMsg::Tick);
    }

    fn flush(&mut self) {
        for action in self.shard.drain_actions() {
            match action {
                Action::Broadcast(env) => {
                    if let Some(b) = encode(&env) {
                        self.args.transport.broadcast(b);
                    }
                }
                Action::SendTo(to, env) => {
                    if let Some(b) = encode(&env) {
                        if let Err(e) = self.args.transport.send(&to, b) {
                            tracing::debug!(%to, error = %e, "presence frame not sent");
                        }
                    }
                }
                Action::Diff(d) => {
                    self.args.view.apply(&d);
                    let _ = self.args.diffs.send(Arc::new(d));
                }
                Action::Replica(t) => {
                    tracing::debug!(shard = self.args.index, ?t, "presence replica")
                }
                Action::Refused { from, reason } => {
                    tracing::warn!(%from, %reason, "presence frame refused")
                }
            }
        }
    }
}

fn encode(env: &Envelope) -> Option<Bytes> {
    match env.encode() {
        Ok(b) => Some(Bytes::from(b)),
        Err(e) => {
            tracing::error!(error = %e, "presence frame not encoded");
            None
        }
    }
}

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardActorState;
    type Arguments = ShardArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ShardMsg>,
        args: ShardArgs,
    ) -> Result<ShardActorState, ActorProcessingErr> {
        let me = ReplicaRef {
            name: args.node.clone(),
            vsn: args.incarnations.next(),
        };
        let shard = Shard::new(me, args.index, args.opts.clone(), args.seed, 0)?;
        args.view.clear();
        args.slot.set(myself.clone());
        let st = ShardActorState {
            shard,
            args,
            started: Instant::now(),
        };
        st.schedule_tick(&myself);
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<ShardMsg>,
        msg: ShardMsg,
        st: &mut ShardActorState,
    ) -> Result<(), ActorProcessingErr> {
        let now = st.now();
        match msg {
            ShardMsg::Track {
                owner,
                topic,
                key,
                meta,
                reply,
            } => {
                let _ = reply.send(st.shard.track(owner, &topic, &key, meta));
            }
            ShardMsg::Untrack {
                owner,
                topic,
                key,
                reply,
            } => {
                st.shard.untrack(owner, &topic, &key);
                let _ = reply.send(());
            }
            ShardMsg::UntrackOwner { owner, reply } => {
                st.shard.untrack_owner(owner);
                let _ = reply.send(());
            }
            ShardMsg::Update {
                owner,
                topic,
                key,
                f,
                reply,
            } => {
                let _ = reply.send(st.shard.update(owner, &topic, &key, f));
            }
            ShardMsg::Inbound { from, env } => st.shard.receive(&from, env, now),
            ShardMsg::PeerConnected(peer) => st.shard.peer_connected(&peer),
            ShardMsg::Tick => {
                st.shard.tick(now);
                st.schedule_tick(&myself);
            }
            ShardMsg::Replicas(reply) => {
                let _ = reply.send(st.shard.replicas().live().cloned().collect());
            }
            ShardMsg::GracefulPermdown(reply) => {
                st.shard.graceful_permdown();
                st.flush();
                st.args.view.clear();
                let _ = reply.send(());
                myself.stop(Some("graceful permdown".into()));
                return Ok(());
            }
        }
        st.flush();
        Ok(())
    }
}
