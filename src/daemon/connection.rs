//! One peer connection: the hello, then a replication session, driven by two small tasks.
//!
//! The hello (and the consent check in it) runs before the actor starts, in the task of whoever
//! accepted or dialled the connection ([`hello`], called by
//! [`start_peer`](crate::daemon::listener::start_peer)): an actor's start must not wait on a
//! remote peer, or two nodes dialling each other at once deadlock — each one's `peers`
//! supervisor starts children one at a time, so each outgoing hello would wait for the other's
//! inbound connection, queued behind the other's own outgoing one (OTP's answer to an `init/1`
//! that would block is the same: return at once, do the work after). The actor owns
//! the QUIC connection. A reader task reads one frame at a time and *calls* the actor with it, so
//! the stream is not read while the actor ingests (backpressure reaches QUIC flow control). An
//! events task forwards node events (new entries to push, changed wants, blocks). A sender task
//! writes what the session decides from the connection's [`Outbox`], reading served ranges from
//! the store in bounded frames; the actor never waits on the sender.
//! Started by the listener (inbound) or a dialer (outbound) as a **temporary** child of the peers
//! dynamic supervisor: a dead connection is redialled by its dialer, never restarted in place.
//! Dropping the state (stop, crash or kill) closes the connection, forgets it in the table and
//! announces the disconnection, so a crash is always noticed by the dialer.

use std::net::SocketAddr;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

use tokio::sync::{broadcast, Semaphore};
use tokio::task::JoinSet;

use crate::daemon::context::PeerContext;
use crate::daemon::error::{NodeError, StartPeerError};
use crate::daemon::events::NodeEvent;
use crate::daemon::messages::ReplicatorMsg;
use crate::daemon::node::Node;
use crate::daemon::peer::{wants, Admitted, ConnInfo, Direction, Job, LocalView, Outbox};
use crate::daemon::uplink::audience::StatusKey;
use crate::daemon::writer::{submit, submit_queued, Pending};
use crate::feed::{now_ms, FeedError};
use crate::identity::FeedId;
use crate::ingest::{Op, OpOutcome};
use crate::limits::{
    CONTROL_TIMEOUT, ENTRIES_FRAME_BYTES, FRAME_BYTES_MAX, INGEST_FRAMES_IN_FLIGHT,
    REPLICATION_BATCH_MAX,
};
use crate::net::close::close;
use crate::net::hello::{
    accept_hello, dial_hello, Admission, Capabilities, Capability, GoodbyeReason, Greeted, Hello,
    NodeRole,
};
use crate::net::{stream, CloseCode, FrameError};
use crate::replicate::{Action, Clock, Msg, Session, WireEntry};
use crate::runtime::OwnedTask;
use crate::store::{Store, StoreError};

/// Messages to a peer connection.
pub enum PeerMsg {
    /// A frame from the peer; the reply says whether to keep reading.
    Frame(Msg, RpcReplyPort<bool>),
    /// A node event.
    Event(NodeEvent, RpcReplyPort<()>),
    /// The events broadcast lagged: re-read the store.
    Resync(RpcReplyPort<()>),
    /// The connection ended.
    Closed(String),
}

/// The peer connection actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerConn;

/// What a peer connection starts with.
#[derive(Clone)]
pub struct PeerConnArgs {
    /// Shared peer context.
    pub ctx: PeerContext,
    /// The established, authenticated connection.
    pub conn: quinn::Connection,
    /// The proven peer id.
    pub peer: FeedId,
    /// Who dialled.
    pub direction: Direction,
    /// The finished hello, taken by the one start (a connection actor is never restarted).
    pub greeted: Arc<std::sync::Mutex<Option<Greeted>>>,
}

/// A live connection's state. Its drop tears the connection down.
pub struct PeerState {
    ctx: PeerContext,
    peer: FeedId,
    session: Session,
    outbox: Outbox,
    ingest_slots: Arc<Semaphore>,
    /// Frames waiting for their verdict; aborted with the state.
    ingesting: JoinSet<()>,
    guard: ConnGuard,
    /// The epoch of the status content key last given to this peer (issue 19).
    key_sent: Option<u64>,
}

struct ConnGuard {
    ctx: PeerContext,
    peer: FeedId,
    conn: quinn::Connection,
    tasks: Vec<OwnedTask>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.tasks.clear();
        close(&self.conn, CloseCode::Normal);
        // A connection that lost the tie-break to a newer one leaves the peer connected: only
        // the peer's current connection going away is a disconnection.
        let current = self
            .ctx
            .connections
            .remove(&self.peer, self.conn.stable_id());
        if current {
            let _ = self
                .ctx
                .node
                .events
                .send(NodeEvent::Disconnected(self.peer));
            self.ctx.node.note_seen(self.peer);
        }
    }
}

impl Actor for PeerConn {
    type Msg = PeerMsg;
    type State = PeerState;
    type Arguments = PeerConnArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        start(myself, args).await
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PeerMsg::Frame(frame, reply) => {
                let keep = on_frame(state, frame).await;
                let _ = reply.send(keep);
                if !keep {
                    myself.stop(Some("protocol violation".into()));
                }
            }
            PeerMsg::Event(event, reply) => {
                let keep = on_event(state, event).await;
                let _ = reply.send(());
                if !keep {
                    myself.stop(Some("blocked".into()));
                }
            }
            PeerMsg::Resync(reply) => {
                let actions = state.session.set_wants(node_wants(&state.ctx.node));
                perform(state, actions).await;
                let _ = reply.send(());
            }
            PeerMsg::Closed(reason) => {
                tracing::debug!(peer = %state.peer.short(), %reason, "connection closed");
                myself.stop(Some(reason));
            }
        }
        Ok(())
    }
}

async fn start(
    myself: ActorRef<PeerMsg>,
    args: PeerConnArgs,
) -> Result<PeerState, ActorProcessingErr> {
    let PeerConnArgs {
        ctx,
        conn,
        peer,
        direction,
        greeted,
    } = args;
    let greeted = greeted
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or("a connection actor is not restarted: its hello is spent")?;
    let _ = ctx.node.events.send(NodeEvent::Connected(peer));
    ctx.node.note_seen(peer);
    let mut guard = ConnGuard {
        ctx: ctx.clone(),
        peer,
        conn: conn.clone(),
        tasks: Vec::new(),
    };
    let memory = ctx.node.store.read()?.peer_memory(&peer)?;
    let mut session = Session::new(node_wants(&ctx.node), memory);
    let outbox = Outbox::default();
    guard.tasks.push(OwnedTask::spawn(send_loop(
        greeted.send,
        outbox.clone(),
        ctx.node.store.clone(),
        myself.clone(),
    )));
    // Blobs ride streams of their own beside the replication stream (`daemon/blob/serve.rs`).
    guard
        .tasks
        .push(OwnedTask::spawn(crate::daemon::blob::serve::serve_streams(
            conn.clone(),
            ctx.node.blobs.clone(),
            peer,
        )));
    guard.tasks.push(OwnedTask::spawn(read_loop(
        greeted.recv,
        conn,
        myself.clone(),
    )));
    guard.tasks.push(OwnedTask::spawn(event_loop(
        ctx.node.events.subscribe(),
        myself,
    )));
    let actions = session.start();
    let ingest_slots = Arc::new(Semaphore::new(INGEST_FRAMES_IN_FLIGHT));
    let mut state = PeerState {
        ctx,
        peer,
        session,
        outbox,
        ingest_slots,
        ingesting: JoinSet::new(),
        guard,
        key_sent: None,
    };
    perform(&mut state, actions).await;
    offer_key(&mut state);
    tracing::info!(peer = %peer.short(), addr = %remote(&state), ?direction, "peer connected");
    Ok(state)
}

/// Enter a greeted connection with `peer` in the connections table, unless the one already
/// there wins the tie-break ([`crate::daemon::peer::keep_new`], evaluated alike on both sides):
/// false, and this connection is closed with [`CloseCode::Duplicate`]. A connection it replaces
/// is closed the same way; its actor stops and leaves the table entry (now this one's) alone.
pub fn admit(
    ctx: &PeerContext,
    conn: &quinn::Connection,
    peer: FeedId,
    direction: Direction,
) -> bool {
    let info = ConnInfo {
        addr: conn.remote_address(),
        since_ms: now_ms(),
        direction,
        conn: conn.clone().into(),
    };
    match ctx.connections.admit(&ctx.node.identity.id(), peer, info) {
        Admitted::New => true,
        Admitted::Superseded(old) => {
            old.close(CloseCode::Duplicate);
            true
        }
        Admitted::Refused => {
            close(conn, CloseCode::Duplicate);
            false
        }
    }
}

/// The hello on a new connection with `peer`, with the consent check in it: a blocked id is
/// never dialled and is told goodbye when it dials. Runs in the caller's task, before the
/// connection actor starts (see the top of this file for why).
pub async fn hello(
    ctx: &PeerContext,
    conn: &quinn::Connection,
    peer: FeedId,
    direction: Direction,
) -> Result<Greeted, StartPeerError> {
    let blocked = ctx.node.rolodex.is_blocked(&peer);
    let ours = Hello::new(NodeRole::Daemon, Capabilities::of(&[Capability::Replicate]));
    let hello = |source| StartPeerError::Hello { peer, source };
    match direction {
        Direction::Outbound if blocked => Err(StartPeerError::Blocked(peer)),
        Direction::Outbound => dial_hello(conn, &ours).await.map_err(hello),
        Direction::Inbound => {
            let admission = if blocked {
                Admission::Refuse(GoodbyeReason::NotWelcome)
            } else {
                Admission::Welcome
            };
            accept_hello(conn, &ours, admission).await.map_err(hello)
        }
    }
}

/// The node's wants (its own feed and the followed ones).
fn node_wants(node: &Node) -> Clock {
    wants(node.identity.id(), &node.store, &node.rolodex)
}

fn remote(state: &PeerState) -> SocketAddr {
    state.guard.conn.remote_address()
}

async fn on_frame(state: &mut PeerState, frame: Msg) -> bool {
    if let Msg::StatusKey { epoch, key } = frame {
        let key = StatusKey { epoch, key };
        state.ctx.node.online.receive_key(state.peer, key);
        return true;
    }
    let local = LocalView {
        store: &state.ctx.node.store,
        rolodex: &state.ctx.node.rolodex,
        peer: state.peer,
        serve: state.ctx.serve,
    };
    let clock = matches!(frame, Msg::Clock { .. });
    match state.session.handle(frame, &local) {
        Ok(actions) => {
            if clock {
                // How far this peer holds our own feed: a resyncing node posts only past it.
                let me = state.ctx.node.identity.id();
                if let Some(seq) = state.session.memory().received.get(&me) {
                    state.ctx.node.own.peer_holds(*seq);
                }
            }
            perform(state, actions).await
        }
        Err(e) => {
            tracing::warn!(peer = %state.peer.short(), error = %e, "closing connection");
            close(&state.guard.conn, CloseCode::ProtocolViolation);
            false
        }
    }
}

async fn on_event(state: &mut PeerState, event: NodeEvent) -> bool {
    let actions = match event {
        NodeEvent::Appended { feed, seq } => {
            let local = LocalView {
                store: &state.ctx.node.store,
                rolodex: &state.ctx.node.rolodex,
                peer: state.peer,
                serve: state.ctx.serve,
            };
            state.session.local_append(feed, seq, &local)
        }
        NodeEvent::WantsChanged => state.session.set_wants(node_wants(&state.ctx.node)),
        NodeEvent::Blocked(id) if id == state.peer => {
            close(&state.guard.conn, CloseCode::Goodbye);
            return false;
        }
        NodeEvent::AudienceChanged => return offer_key(state),
        _ => return true,
    };
    perform(state, actions).await
}

/// Give this peer the content key this node's status line is sealed with, if it may see this
/// node's presence and does not have the current key yet (issue 19). The switchboard links keep
/// the audience current and announce each change ([`NodeEvent::AudienceChanged`]). False if the
/// connection must end.
fn offer_key(state: &mut PeerState) -> bool {
    let online = &state.ctx.node.online;
    if !online.allows(&state.peer) {
        return true;
    }
    let StatusKey { epoch, key } = online.key();
    if state.key_sent == Some(epoch) {
        return true;
    }
    state.key_sent = Some(epoch);
    match state.outbox.send(Msg::StatusKey { epoch, key }) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(peer = %state.peer.short(), error = %e, "closing connection");
            close(&state.guard.conn, CloseCode::Normal);
            false
        }
    }
}

/// A peer that asks for this node's own feed follows it (`presence_visible_to = "followers"`):
/// note it, or that it stopped, and announce a change.
fn note_follower(state: &PeerState, memory: &crate::replicate::PeerMemory) {
    let node = &state.ctx.node;
    let follows = memory.received.contains_key(&node.identity.id());
    if node.online.note_follower(state.peer, follows) {
        let _ = node.events.send(NodeEvent::AudienceChanged);
    }
}

/// Carry out the session's actions; false if the connection must end.
async fn perform(state: &mut PeerState, actions: Vec<Action>) -> bool {
    for action in actions {
        let ok = match action {
            Action::Send(msg) => match state.outbox.send(msg) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(peer = %state.peer.short(), error = %e, "closing connection");
                    close(&state.guard.conn, CloseCode::Normal);
                    false
                }
            },
            Action::Serve { feed, after, upto } => {
                state.outbox.serve(feed, after, upto);
                true
            }
            Action::Remember(memory) => {
                note_follower(state, &memory);
                let op = Op::PeerMemory(state.peer, memory);
                if let Err(e) = submit(&state.ctx.node.writer, vec![op]).await {
                    tracing::warn!(peer = %state.peer.short(), error = %e, "could not save the peer's clock");
                }
                true
            }
            Action::Ingest { feed, entries } => ingest(state, feed, entries).await,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Hand entries of `feed` from this peer to the feed's replicator (or the store writer directly
/// if the feed has none, e.g. while it restarts) without waiting for them to be durable: up to
/// [`INGEST_FRAMES_IN_FLIGHT`] frames are in flight, and the next frame is not read until a slot
/// frees. A task per frame waits for the verdict; a forged or invalid entry closes the
/// connection (entries before it are kept; later frames fail their sequence check).
async fn ingest(state: &mut PeerState, feed: FeedId, entries: Vec<WireEntry>) -> bool {
    while state.ingesting.try_join_next().is_some() {}
    let Ok(slot) = Arc::clone(&state.ingest_slots).acquire_owned().await else {
        return false;
    };
    let verdict = match state.ctx.replicators.get(&feed) {
        Some(replicator) => {
            let (tx, rx) = ractor::concurrency::oneshot();
            let msg = ReplicatorMsg::Ingest {
                from: state.peer,
                entries,
                reply: tx.into(),
            };
            if replicator.cast(msg).is_err() {
                return fail(state, &NodeError::Unavailable("the feed replicator"));
            }
            Verdict::Replicator(rx)
        }
        None => {
            let ops = entries
                .into_iter()
                .map(|w| Op::from_wire(w, Some(feed)))
                .collect();
            match submit_queued(&state.ctx.node.writer, ops) {
                Ok(pending) => Verdict::Writer(pending),
                Err(e) => return fail(state, &e),
            }
        }
    };
    let (conn, peer) = (state.guard.conn.clone(), state.peer);
    state.ingesting.spawn(async move {
        let outcome = verdict.outcome().await;
        drop(slot);
        match outcome {
            Ok(None) => {}
            Ok(Some(e)) => {
                tracing::warn!(peer = %peer.short(), feed = %feed.short(), error = %e, "peer sent an invalid entry; closing");
                close(&conn, CloseCode::InvalidEntry);
            }
            Err(e) => {
                tracing::warn!(peer = %peer.short(), error = %e, "ingest failed; closing");
                close(&conn, CloseCode::Normal);
            }
        }
    });
    true
}

fn fail(state: &PeerState, e: &NodeError) -> bool {
    tracing::warn!(peer = %state.peer.short(), error = %e, "ingest failed; closing");
    close(&state.guard.conn, CloseCode::Normal);
    false
}

/// Where an ingest's answer will come from.
enum Verdict {
    Replicator(ractor::concurrency::OneshotReceiver<Result<Option<FeedError>, NodeError>>),
    Writer(Pending),
}

impl Verdict {
    async fn outcome(self) -> Result<Option<FeedError>, NodeError> {
        match self {
            Verdict::Replicator(rx) => match tokio::time::timeout(CONTROL_TIMEOUT, rx).await {
                Ok(Ok(verdict)) => verdict,
                Ok(Err(_)) => Err(NodeError::Unavailable("the feed replicator")),
                Err(_) => Err(NodeError::Timeout("the feed replicator", CONTROL_TIMEOUT)),
            },
            Verdict::Writer(pending) => Ok(pending.outcome().await?.into_iter().find_map(refused)),
        }
    }
}

fn refused(outcome: Result<OpOutcome, FeedError>) -> Option<FeedError> {
    outcome.err()
}

async fn read_loop(
    mut recv: quinn::RecvStream,
    conn: quinn::Connection,
    myself: ActorRef<PeerMsg>,
) {
    let reason = loop {
        match stream::read_frame::<Msg>(&mut recv, FRAME_BYTES_MAX).await {
            Ok(Some(msg)) => match myself.call(|reply| PeerMsg::Frame(msg, reply), None).await {
                Ok(ractor::rpc::CallResult::Success(true)) => continue,
                _ => return,
            },
            Ok(None) => break "peer finished".to_string(),
            Err(e) => {
                if let Some(code) = e.close_code() {
                    close(&conn, code);
                }
                break e.to_string();
            }
        }
    };
    let _ = myself.cast(PeerMsg::Closed(reason));
}

async fn event_loop(mut events: broadcast::Receiver<NodeEvent>, myself: ActorRef<PeerMsg>) {
    loop {
        let call = match events.recv().await {
            Ok(event) => {
                myself
                    .call(|reply| PeerMsg::Event(event, reply), None)
                    .await
            }
            Err(broadcast::error::RecvError::Lagged(_)) => myself.call(PeerMsg::Resync, None).await,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !matches!(call, Ok(ractor::rpc::CallResult::Success(()))) {
            return;
        }
    }
}

async fn send_loop(
    mut send: quinn::SendStream,
    outbox: Outbox,
    store: Store,
    myself: ActorRef<PeerMsg>,
) {
    while let Some(job) = outbox.next().await {
        let sent = match job {
            Job::Send(msg) => stream::write_frame(&mut send, &msg)
                .await
                .map_err(SendError::from),
            Job::Serve { feed, after, upto } => serve(&mut send, &store, feed, after, upto).await,
        };
        if let Err(reason) = sent {
            let _ = myself.cast(PeerMsg::Closed(reason.to_string()));
            return;
        }
    }
}

/// Why the sender stopped: a frame could not be written, or the store could not be read.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// Writing a frame failed.
    #[error(transparent)]
    Write(#[from] FrameError),
    /// Reading the entries to serve failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Send entries `after + 1 ..= upto` of `feed` in frames of bounded size.
async fn serve(
    send: &mut quinn::SendStream,
    store: &Store,
    feed: FeedId,
    after: u64,
    upto: u64,
) -> Result<(), SendError> {
    let mut next = after + 1;
    while next <= upto {
        let count = ((upto - next + 1) as usize).min(REPLICATION_BATCH_MAX);
        let batch = store
            .read()
            .and_then(|r| r.range(&feed, next, count, ENTRIES_FRAME_BYTES))?;
        if batch.is_empty() {
            // The store holds less than announced (a payload-less feed or a bug): stop here.
            return Ok(());
        }
        next += batch.len() as u64;
        stream::write_frame(
            send,
            &Msg::Entries {
                feed,
                entries: batch,
            },
        )
        .await?;
    }
    Ok(())
}
