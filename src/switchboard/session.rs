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

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;

use crate::feed::now_ms;
use crate::identity::FeedId;
use crate::limits::{
    INTRODUCTIONS_PENDING_MAX, SB_FRAME_BYTES_MAX, SB_INTRODUCTIONS_BURST,
    SB_INTRODUCTIONS_PER_SEC, SB_SEND_QUEUE, WATCH_IDS_MAX,
};
use crate::net::close::close;
use crate::net::hello::{
    accept_hello, Admission, Capabilities, Capability, Greeted, Hello, NodeRole,
};
use crate::net::{frame, stream, CloseCode};
use crate::presence::driver::transport::Inbound;
use crate::presence::{Owner, ReplicaName};
use crate::relay::bucket::{Rate, TokenBucket};
use crate::relay::config::check_link;
use crate::relay::DatagramLink;
use crate::runtime::OwnedTask;
use crate::switchboard::cluster::node_link::{self, NodeLink};
use crate::switchboard::context::{Counters, SbContext};
use crate::switchboard::invites::InviteError;
use crate::wire::switchboard::{
    check_status, ClientMsg, NodeMsg, PeerMeta, ServerMsg, PEERS_TOPIC,
};

/// Messages to a switchboard session.
pub enum SbSessionMsg {
    /// A frame from the peer; the reply says whether to keep reading.
    Frame(ClientMsg, RpcReplyPort<bool>),
    /// The presence of an id this peer watches may have changed.
    Notice(FeedId),
    /// Notices may have been missed: tell the peer the presence of every watched id again.
    Resync,
    /// Another peer asks to be introduced to this one.
    IntroRequest {
        /// Who asks.
        from: FeedId,
        /// Where the answer goes.
        asker: Asker,
        /// Their observed address.
        observed: SocketAddr,
    },
    /// The answer to this peer's introduction request.
    IntroResult {
        /// Whom this peer asked for.
        to: FeedId,
        /// Their observed address, or why it was refused.
        result: Result<SocketAddr, String>,
    },
    /// The connection ended.
    Closed(String),
}

/// Where the answer to an introduction request goes.
pub enum Asker {
    /// The caller's session on this node.
    Local(ActorRef<SbSessionMsg>),
    /// The cluster node the caller is connected to.
    Node(FeedId),
}

/// The switchboard session actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SbSession;

/// What a session starts with.
#[derive(Clone)]
pub struct SbSessionArgs {
    /// The switchboard.
    pub ctx: SbContext,
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
    ctx: SbContext,
    peer: FeedId,
    owner: Owner,
    joined: bool,
    status: Option<String>,
    since_ms: u64,
    watch: HashSet<FeedId>,
    /// Introductions asked of this peer and not yet answered, bounded.
    asked: HashMap<FeedId, Asker>,
    /// Introductions this peer may still ask for ([`introduction_rate`]).
    introductions: TokenBucket,
    me: ActorRef<SbSessionMsg>,
    relay: Option<OwnedTask>,
    /// The control stream to another cluster node, when the peer is one.
    node_link: Option<NodeLink>,
    /// Encoded frames for the sender task (small slots: the queue's memory is per peer).
    out: mpsc::Sender<Bytes>,
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
            for (caller, asker) in std::mem::take(&mut self.asked) {
                reply(self, caller, asker, Err(gone(&self.peer)));
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
        let (out, queued) = mpsc::channel(SB_SEND_QUEUE);
        Ok(SbSessionState {
            role: Role::Greeting,
            ctx,
            peer,
            owner: next_owner(),
            joined: false,
            status: None,
            since_ms: now_ms(),
            watch: HashSet::new(),
            asked: HashMap::new(),
            introductions: TokenBucket::new(&introduction_rate(), Instant::now()),
            me: myself,
            relay: None,
            node_link: None,
            out,
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
        match accept_hello(&state.conn, &ours, Admission::Welcome).await {
            Ok(greeted) => greet(state, greeted),
            Err(e) => {
                // A failed hello is counted and ends the session normally (the connection is
                // already closed with the hello's close code).
                Counters::bump(&state.ctx.counters.refused);
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
                let keep = on_frame(state, frame).await;
                let _ = reply.send(keep);
                if !keep {
                    myself.stop(Some("session ended".into()));
                }
                return Ok(());
            }
            SbSessionMsg::Notice(id) => !state.watch.contains(&id) || notice(state, id),
            SbSessionMsg::Resync => {
                let ids: Vec<FeedId> = state.watch.iter().copied().collect();
                ids.into_iter().all(|id| notice(state, id))
            }
            SbSessionMsg::IntroRequest {
                from,
                asker,
                observed,
            } => ask(state, from, asker, observed),
            SbSessionMsg::IntroResult { to, result } => {
                let msg = match result {
                    Ok(observed) => ServerMsg::Introduced { peer: to, observed },
                    Err(reason) => ServerMsg::IntroRefused { to, reason },
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
        state.node_link = Some(node_link::start(
            ctx,
            state.peer,
            &state.conn,
            greeted.send,
            greeted.recv,
        ));
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
        .push(OwnedTask::spawn(send_loop(greeted.send, queued)));
    state
        ._tasks
        .push(OwnedTask::spawn(read_loop(greeted.recv, state.me.clone())));
    ctx.counters.connected.fetch_add(1, Ordering::Relaxed);
    state.role = Role::Client;
}

fn meta(state: &SbSessionState) -> Vec<u8> {
    PeerMeta {
        since_ms: state.since_ms,
        node: state.ctx.node.clone(),
        status: state.status.clone(),
    }
    .encode()
}

async fn on_frame(state: &mut SbSessionState, frame: ClientMsg) -> bool {
    match frame {
        ClientMsg::Join { invite } => join(state, invite).await,
        _ if !state.joined => {
            let _ = send(
                state,
                ServerMsg::Refused {
                    reason: "send Join first".into(),
                },
            );
            false
        }
        ClientMsg::SetStatus { text } => {
            if let Err(reason) = check_status(&text) {
                return send(state, ServerMsg::Refused { reason });
            }
            state.status = text;
            let (key, meta) = (state.peer.to_string(), meta(state));
            state
                .ctx
                .tracker
                .update(state.owner, PEERS_TOPIC, &key, move |_| meta)
                .await
                .is_ok()
        }
        ClientMsg::Watch { ids } => watch(state, ids),
        ClientMsg::Introduce { to } => introduce(state, to),
        ClientMsg::IntroAnswer { from, accept } => answer(state, from, accept),
    }
}

fn gone(peer: &FeedId) -> String {
    format!("{peer} is not connected to this switchboard")
}

/// How many introductions one peer may ask for.
fn introduction_rate() -> Rate {
    Rate::count(
        f64::from(SB_INTRODUCTIONS_PER_SEC),
        f64::from(SB_INTRODUCTIONS_BURST),
    )
}

/// This peer asks to reach `to`: ask `to`'s session, which asks its peer; or, when `to` is a
/// client of another node of the cluster, ask that node. Past its rate, refused.
fn introduce(state: &mut SbSessionState, to: FeedId) -> bool {
    let within_rate = state
        .introductions
        .take(&introduction_rate(), 0, Instant::now());
    let refuse = |reason: String| {
        Counters::bump(&state.ctx.counters.introductions_refused);
        send(state, ServerMsg::IntroRefused { to, reason })
    };
    if !within_rate {
        return refuse(format!("too many introductions asked: at most {SB_INTRODUCTIONS_PER_SEC} a second; try again later"));
    }
    if to == state.peer {
        return refuse("that is your own id".into());
    }
    let observed = state.conn.remote_address();
    if let Some(session) = state.ctx.sessions.get(&to).map(|s| s.clone()) {
        let request = SbSessionMsg::IntroRequest {
            from: state.peer,
            asker: Asker::Local(state.me.clone()),
            observed,
        };
        return session.cast(request).is_ok() || refuse(gone(&to));
    }
    let Some(node) = home_node(state, &to) else {
        return refuse(gone(&to));
    };
    let request = NodeMsg::Introduce {
        from: state.peer,
        to,
        observed,
    };
    state.ctx.nodes.send(&node, request)
        || refuse(format!(
            "{to} is on another switchboard node that cannot be reached now"
        ))
}

/// The other cluster node `id` is connected to, per presence.
fn home_node(state: &SbSessionState, id: &FeedId) -> Option<FeedId> {
    state
        .ctx
        .tracker
        .get_by_key(PEERS_TOPIC, &id.to_string())
        .into_iter()
        .filter_map(|p| PeerMeta::decode(&p.row.meta))
        .filter_map(|m| m.node.parse::<FeedId>().ok())
        .find(|node| state.ctx.nodes.is_linked(node))
}

/// Another peer asks to reach this one: pass the question on (bounded).
fn ask(state: &mut SbSessionState, from: FeedId, asker: Asker, observed: SocketAddr) -> bool {
    if state.asked.len() >= INTRODUCTIONS_PENDING_MAX && !state.asked.contains_key(&from) {
        let result = Err(format!(
            "{} has too many introductions pending; try again later",
            state.peer
        ));
        reply(state, from, asker, result);
        return true;
    }
    state.asked.insert(from, asker);
    send(state, ServerMsg::IntroRequest { from, observed })
}

/// This peer answered an introduction request.
fn answer(state: &mut SbSessionState, from: FeedId, accept: bool) -> bool {
    let Some(asker) = state.asked.remove(&from) else {
        return true;
    };
    let result = if !accept {
        Err(format!("{} does not accept introductions from you (by default a peer accepts only ids it follows)", state.peer))
    } else {
        let opened = match &asker {
            Asker::Local(_) => state
                .ctx
                .hub
                .open_pair(from, state.peer)
                .map_err(|e| format!("the switchboard cannot relay between you: {e}")),
            Asker::Node(node) => node_link::open_remote(&state.ctx, *node, state.peer, from),
        };
        opened.map(|()| state.conn.remote_address())
    };
    let counter = if result.is_ok() {
        &state.ctx.counters.introductions
    } else {
        &state.ctx.counters.introductions_refused
    };
    Counters::bump(counter);
    reply(state, from, asker, result);
    true
}

/// Give `caller`, who asked this peer through `asker`, this peer's answer.
fn reply(state: &SbSessionState, caller: FeedId, asker: Asker, result: Result<SocketAddr, String>) {
    match asker {
        Asker::Local(session) => {
            let _ = session.cast(SbSessionMsg::IntroResult {
                to: state.peer,
                result,
            });
        }
        Asker::Node(node) => {
            let _ = state.ctx.nodes.send(
                &node,
                NodeMsg::Answer {
                    callee: state.peer,
                    caller,
                    result,
                },
            );
        }
    }
}

async fn join(state: &mut SbSessionState, invite: Option<String>) -> bool {
    if state.joined {
        return true;
    }
    if let Err(e) = admit(&state.ctx, invite.as_deref()) {
        Counters::bump(&state.ctx.counters.refused);
        let _ = send(
            state,
            ServerMsg::Refused {
                reason: e.to_string(),
            },
        );
        return false;
    }
    let key = state.peer.to_string();
    if let Err(e) = state
        .ctx
        .tracker
        .track(state.owner, PEERS_TOPIC, &key, meta(state))
        .await
    {
        tracing::warn!(peer = %state.peer.short(), error = %e, "could not track the peer");
        return false;
    }
    state.joined = true;
    Counters::bump(&state.ctx.counters.joins);
    state.ctx.sessions.insert(state.peer, state.me.clone());
    start_relay(state);
    send(
        state,
        ServerMsg::Welcome {
            observed: state.conn.remote_address(),
        },
    )
}

/// Open membership admits anyone; an invite-only switchboard spends one invite code.
fn admit(ctx: &SbContext, invite: Option<&str>) -> Result<(), InviteError> {
    let Some(invites) = &ctx.invites else {
        return Ok(());
    };
    let mut file = invites.lock().unwrap_or_else(|p| p.into_inner());
    file.invites.redeem(invite, now_ms())?;
    file.save()
}

fn watch(state: &mut SbSessionState, ids: Vec<FeedId>) -> bool {
    if ids.len() > WATCH_IDS_MAX {
        let reason = format!("at most {WATCH_IDS_MAX} ids may be watched");
        return send(state, ServerMsg::Refused { reason });
    }
    let watch: HashSet<FeedId> = ids.into_iter().collect();
    state.ctx.watchers.replace(state.peer, &state.watch, &watch);
    state.watch = watch;
    // A fresh watch list: the client assumes everyone offline, so only those online are news.
    let online: Vec<FeedId> = state
        .watch
        .iter()
        .filter(|id| is_online(state, id))
        .copied()
        .collect();
    online.into_iter().all(|id| notice(state, id))
}

fn is_online(state: &SbSessionState, id: &FeedId) -> bool {
    !state
        .ctx
        .tracker
        .get_by_key(PEERS_TOPIC, &id.to_string())
        .is_empty()
}

/// Tell the peer the current presence of `id`.
fn notice(state: &SbSessionState, id: FeedId) -> bool {
    let online = state
        .ctx
        .tracker
        .get_by_key(PEERS_TOPIC, &id.to_string())
        .into_iter()
        .filter_map(|p| PeerMeta::decode(&p.row.meta))
        .max_by_key(|m| m.since_ms);
    Counters::bump(&state.ctx.counters.notices);
    send(state, ServerMsg::Presence { id, online })
}

/// Relay this peer's datagrams, if its connection can carry them: the hub sends to this peer on
/// its connection, and a task routes what this peer sends through the hub.
fn start_relay(state: &mut SbSessionState) {
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
fn send(state: &SbSessionState, msg: ServerMsg) -> bool {
    match frame::encode(&msg, SB_FRAME_BYTES_MAX) {
        Ok(bytes) => state.out.try_send(Bytes::from(bytes)).is_ok(),
        Err(e) => {
            tracing::warn!(peer = %state.peer.short(), error = %e, "a message to the peer could not be encoded");
            false
        }
    }
}

async fn send_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(frames) = rx.recv().await {
        if stream::write_raw(&mut send, &frames).await.is_err() {
            return;
        }
    }
}

async fn read_loop(mut recv: quinn::RecvStream, myself: ActorRef<SbSessionMsg>) {
    let reason = loop {
        match stream::read_frame::<ClientMsg>(&mut recv, SB_FRAME_BYTES_MAX).await {
            Ok(Some(msg)) => match myself
                .call(|reply| SbSessionMsg::Frame(msg, reply), None)
                .await
            {
                Ok(ractor::rpc::CallResult::Success(true)) => continue,
                _ => return,
            },
            Ok(None) => break "peer finished".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    let _ = myself.cast(SbSessionMsg::Closed(reason));
}
