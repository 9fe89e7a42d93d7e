//! One peer connected to a switchboard: admission, presence tracking, and presence notices.
//!
//! States: greeting (the hello runs in `post_start`, after the clients supervisor has already
//! moved on, so that one slow peer never holds up the next one's start), joined (tracked in the
//! presence CRDT under its proven id; told when the ids it watches come and go, through the
//! node's [`Watchers`](crate::switchboard::watchers::Watchers) index and the notifier). The peer
//! is untracked when the state is dropped, however the actor ends. A reader task calls the actor
//! per frame; a sender task writes answers from a bounded queue (a peer that does not read is cut
//! off, never buffered without bound); a relay task routes the peer's datagrams through the hub.
//! Started by the switchboard listener as a temporary child of the clients dynamic supervisor.
//!
//! This file is the actor, a thin driver; the rest is in its parts: [`presence`] (join, watch,
//! notices), [`introductions`] (carrying out the decisions of the sans-IO
//! [`intro`](crate::switchboard::intro) policy) and [`io`] (the peer's stream and datagrams).

mod introductions;
mod io;
mod presence;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_channel::mpsc;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::feed::now_ms;
use crate::identity::FeedId;
use crate::limits::SB_SEND_QUEUE;
use crate::net::close::close;
use crate::net::hello::{
    accept_hello, Admission, Capabilities, Capability, GoodbyeReason, Greeted, Hello, HelloError,
    NodeRole,
};
use crate::net::CloseCode;
use crate::presence::driver::transport::Inbound;
use crate::presence::{Owner, ReplicaName};
use crate::runtime::OwnedTask;
use crate::switchboard::cluster::node_link::{self, NodeLink};
use crate::switchboard::context::{Counters, SbContext};
use crate::switchboard::intro::Introductions;
use crate::switchboard::messages::{Asker, SbSessionMsg};
use crate::wire::switchboard::{ClientMsg, PeerMeta, SealedStatus, ServerMsg};

use io::send;

/// The switchboard session actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SbSession;

/// What a session starts with.
#[derive(Clone)]
pub struct SbSessionArgs {
    /// The switchboard, shared: a session's start arguments stay with its supervisor for the
    /// session's life, so each session holds one pointer rather than a copy of the context.
    pub ctx: Arc<SbContext>,
    /// The authenticated connection.
    pub conn: quinn::Connection,
    /// The proven peer id.
    pub peer: FeedId,
}

/// Who is on the other end, once the hello said so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The hello has not finished.
    Greeting,
    /// A daemon (counted in `connected`).
    Client,
    /// Another switchboard of the cluster (presence gossip, no session).
    Switchboard,
}

/// A session's state; dropping it untracks the peer and closes the connection.
pub struct SbSessionState {
    role: Role,
    ctx: Arc<SbContext>,
    peer: FeedId,
    owner: Owner,
    joined: bool,
    /// The join was refused: the refusal is on its way and the session ends after a linger;
    /// frames the peer sent behind its `Join` are ignored meanwhile.
    join_refused: bool,
    /// The peer's status line, sealed by it (the switchboard cannot read it).
    status: Option<SealedStatus>,
    /// Who may see the peer's presence (`None`: everyone); nobody until it says.
    visible_to: Option<Vec<FeedId>>,
    /// The version of the peer's presence meta (one more per change).
    meta_seq: u64,
    since_ms: u64,
    watch: HashSet<FeedId>,
    /// What the peer was last told of each watched id it may see online (bounded by the watch
    /// list): notices go out only when this view changes.
    shown: HashMap<FeedId, PeerMeta>,
    /// Introductions asked by and of this peer: the rate, the pending requests.
    intros: Introductions<Asker>,
    me: ActorRef<SbSessionMsg>,
    relay: Option<OwnedTask>,
    /// The control stream to another cluster node, when the peer is one (boxed: it holds a
    /// copy of the node's context, and every client session would carry its room).
    node_link: Option<Box<NodeLink>>,
    /// Encoded frames for the sender task (small slots: the queue's memory is per peer). In a
    /// cell because a bounded `futures-channel` sender sends through `&mut`, and the session's
    /// steps take `&SbSessionState`; only the actor touches it.
    out: RefCell<mpsc::Sender<Bytes>>,
    /// The sender task's end of `out`, until the hello is done.
    queued: Option<mpsc::Receiver<Bytes>>,
    conn: quinn::Connection,
    _tasks: Vec<OwnedTask>,
}

impl Drop for SbSessionState {
    fn drop(&mut self) {
        close(&self.conn, CloseCode::Normal);
        match self.role {
            Role::Greeting => return,
            Role::Switchboard => {
                self.ctx.cluster.detach(
                    &ReplicaName::new(&self.peer.to_string()),
                    self.conn.stable_id(),
                );
                return;
            }
            Role::Client => self.ctx.counters.connected.fetch_sub(1, Ordering::Relaxed),
        };
        if self.joined {
            // The peer's relay registration and watches are keyed by its id: leave them alone if
            // it has already joined again on a newer connection (this one may end only at its
            // idle timeout, long after the peer reconnected).
            let current = self
                .ctx
                .sessions
                .remove_if(&self.peer, |_, s| s.get_id() == self.me.get_id())
                .is_some();
            if current {
                self.ctx.watchers.remove(self.peer, &self.watch);
                self.ctx.hub.remove(&self.peer);
            }
            for decision in self.intros.abandon() {
                introductions::carry_out(self, decision);
            }
            let (tracker, owner) = (self.ctx.tracker.clone(), self.owner);
            // The tracker call is async; the untrack must happen even after a crash.
            tokio::spawn(async move {
                let _ = tracker.untrack_owner(owner).await;
            });
        }
    }
}

/// A process-wide serial for presence owners (one per session).
fn next_owner() -> Owner {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Owner(NEXT.fetch_add(1, Ordering::Relaxed))
}

impl Actor for SbSession {
    type Msg = SbSessionMsg;
    type State = SbSessionState;
    type Arguments = SbSessionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let SbSessionArgs { ctx, conn, peer } = args;
        // The channel holds `SB_SEND_QUEUE` plus one slot per sender (one here).
        let (out, queued) = mpsc::channel(SB_SEND_QUEUE);
        Ok(SbSessionState {
            role: Role::Greeting,
            ctx,
            peer,
            owner: next_owner(),
            joined: false,
            join_refused: false,
            status: None,
            visible_to: Some(Vec::new()),
            meta_seq: 0,
            since_ms: now_ms(),
            watch: HashSet::new(),
            shown: HashMap::new(),
            intros: Introductions::new(peer, Instant::now()),
            me: myself,
            relay: None,
            node_link: None,
            out: RefCell::new(out),
            queued: Some(queued),
            conn,
            _tasks: Vec::new(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let ours = Hello::new(
            NodeRole::Switchboard,
            Capabilities::of(&[Capability::Presence, Capability::Relay]),
        );
        let admission = match state.ctx.members.contains(&state.peer) {
            true => Admission::Welcome,
            false => Admission::RefuseRole(NodeRole::Switchboard, GoodbyeReason::NotAClusterMember),
        };
        match accept_hello(&state.conn, &ours, admission).await {
            Ok(greeted) => greet(state, greeted),
            Err(HelloError::Refused(GoodbyeReason::NotAClusterMember)) => {
                Counters::bump(&state.ctx.counters.nodes_refused);
                tracing::warn!(
                    peer = %state.peer,
                    "refused a switchboard that is not a member of this cluster (list its key with --cluster-key to admit it)"
                );
                myself.stop(Some("not a cluster member".into()));
            }
            Err(e) => {
                // A failed hello is counted and ends the session normally (the connection is
                // already closed with the hello's close code).
                Counters::bump(&state.ctx.counters.refused);
                Counters::bump(&state.ctx.counters.hellos_failed);
                myself.stop(Some(format!("hello failed: {e}")));
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let keep = match msg {
            SbSessionMsg::Frame(frame, reply) => {
                // Boxed: ractor keeps room for this handler's future in the actor's loop for the
                // session's life, and an inline `on_frame` (the join awaits the tracker) made
                // every idle session about 2 KiB larger (heaptrack); frames are few per session.
                let keep = Box::pin(on_frame(state, frame)).await;
                let _ = reply.send(keep);
                if !keep {
                    myself.stop(Some("session ended".into()));
                }
                return Ok(());
            }
            SbSessionMsg::Notice(id) => !state.watch.contains(&id) || presence::notice(state, id),
            SbSessionMsg::Resync => presence::resync(state),
            SbSessionMsg::IntroRequest {
                from,
                asker,
                observed,
            } => {
                let decision = state.intros.ask(from, asker, observed);
                introductions::carry_out(state, decision)
            }
            SbSessionMsg::IntroResult { to, result } => {
                let msg = match result {
                    Ok(observed) => ServerMsg::Introduced { peer: to, observed },
                    Err(e) => ServerMsg::IntroRefused {
                        to,
                        reason: e.to_string(),
                        declined: e.declined(),
                    },
                };
                send(state, msg)
            }
            SbSessionMsg::Closed(reason) => {
                myself.stop(Some(reason));
                return Ok(());
            }
        };
        if !keep {
            myself.stop(Some("peer not reading".into()));
        }
        Ok(())
    }
}

/// The hello is done: start the control stream's tasks, as a client or as a cluster link.
fn greet(state: &mut SbSessionState, greeted: Greeted) {
    let ctx = &state.ctx;
    if greeted.agreed.peer_role == NodeRole::Switchboard {
        let inbound: Arc<dyn Inbound> = Arc::new(ctx.tracker.clone());
        ctx.cluster.attach(
            ReplicaName::new(&state.peer.to_string()),
            state.conn.clone(),
            inbound,
        );
        state.node_link = Some(Box::new(node_link::start(
            ctx,
            state.peer,
            &state.conn,
            greeted.send,
            greeted.recv,
        )));
        let (conn, me) = (state.conn.clone(), state.me.clone());
        state._tasks.push(OwnedTask::spawn(async move {
            let reason = conn.closed().await;
            let _ = me.cast(SbSessionMsg::Closed(format!("cluster node gone: {reason}")));
        }));
        tracing::info!(node = %state.peer.short(), "cluster node connected");
        state.role = Role::Switchboard;
        return;
    }
    let Some(queued) = state.queued.take() else {
        return;
    };
    state
        ._tasks
        .push(OwnedTask::spawn(io::send_loop(greeted.send, queued)));
    state._tasks.push(OwnedTask::spawn(io::read_loop(
        greeted.recv,
        state.me.clone(),
    )));
    ctx.counters.connected.fetch_add(1, Ordering::Relaxed);
    state.role = Role::Client;
}

/// A frame from the peer; false ends the session.
async fn on_frame(state: &mut SbSessionState, frame: ClientMsg) -> bool {
    match frame {
        _ if state.join_refused => true,
        ClientMsg::Join { invite } => presence::join(state, invite).await,
        _ if !state.joined => {
            let _ = send(
                state,
                ServerMsg::Refused {
                    reason: "send Join first".into(),
                },
            );
            false
        }
        ClientMsg::SetStatus { status } => presence::set_status(state, status).await,
        ClientMsg::VisibleTo { ids } => presence::visible_to(state, ids).await,
        ClientMsg::Watch { ids } => presence::watch(state, ids),
        ClientMsg::Introduce { to } => {
            let decision = state.intros.introduce(to, Instant::now());
            introductions::carry_out(state, decision)
        }
        ClientMsg::IntroAnswer { from, answer } => {
            let decision = state.intros.answer(from, answer);
            introductions::carry_out(state, decision)
        }
    }
}
