//! A daemon's link to one switchboard: stays connected, says who it is interested in, and keeps
//! the node's view of who is online.
//!
//! States: connecting (dial with backoff and jitter), refused (backing off, or waiting for a new
//! invite code: [`crate::daemon::uplink::retry`]), joined (says whom this node's
//! presence is shown to, sends its status line sealed to them, and its watch list — the ids it
//! follows — and records the presence notices it gets). The
//! switchboard's key is pinned: given as `@ID@HOST:PORT`, or learned on first use (as SSH does,
//! [`crate::net::pin`]), kept for the life of the actor and remembered in the store. When the connection ends, everything this switchboard
//! said is forgotten and the link reconnects by itself.
//!
//! A link names one switchboard or a cluster of them ([`Cluster`]: several members, or a name
//! that resolves to several nodes, with their keys). It keeps one connection at a time, to one
//! member; when that node dies (the link hears nothing for [`SB_LINK_IDLE_TIMEOUT`](crate::limits::SB_LINK_IDLE_TIMEOUT)), ends the
//! connection or refuses the join, the link moves to the next member at once, and backs off only
//! once every member was tried ([`crate::daemon::uplink::retry`]). Its inner relay endpoint is
//! closed with the connection, so the relayed peer connections it carried end at once and are
//! dialled again through the new member. A watched peer that rejoins (a newer presence, i.e. it
//! moved to another node) has its relayed connection here closed the same way: the path it rode
//! died with its old link.
//!
//! Started through [`start_link`] under the daemon's `switchboards` dynamic supervisor (its
//! restart type is the tree's), one per `--switchboard`, remembered switchboard or switchboard
//! a followed contact card names. It starts peer connections (introduced peers, dial-backs), so
//! it sits beside the other actors, above the plumbing in [`crate::daemon::uplink`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{broadcast, mpsc};

use crate::daemon::context::PeerContext;
use crate::daemon::error::IntroError;
use crate::daemon::events::NodeEvent;
use crate::daemon::listener::start_peer;
use crate::daemon::messages::{Relayed, SbLinkMsg};
use crate::daemon::peer::{intro_answer, Direction};
use crate::daemon::punch::punch;
use crate::daemon::uplink::retry::{Next, Retry};
use crate::daemon::uplink::{LinkState, LinkView};
use crate::daemon::writer::submit_queued;
use crate::feed::now_ms;
use crate::identity::{FeedId, IdentityError};
use crate::ingest::Op;
use crate::limits::{
    FRAME_BYTES_MAX, HANDSHAKE_TIMEOUT, INTRODUCTIONS_PENDING_MAX, SB_CLUSTER_ADDRS_MAX,
    SB_FRAME_BYTES_MAX, SB_SEND_QUEUE,
};
use crate::net::endpoint::accept;
use crate::net::frame;
use crate::net::hello::{
    dial_hello_pipelined, Capabilities, Capability, Hello, HelloError, NodeRole,
};
use crate::net::pin::{pin, PinError};
use crate::net::target::{Cluster, KeyRule, TargetError};
use crate::net::tls::{peer_key, server_name};
use crate::net::CloseCode;
use crate::net::PeerEndpoint;
use crate::net::{stream, NetError};
use crate::relay::config::{check_link, uplink_client_config};
use crate::relay::{pump, VirtualSocket};
use crate::runtime::OwnedTask;
use crate::supervisor::SupervisorError;
use crate::wire::switchboard::{ClientMsg, IntroAnswer, JoinRefusal, ServerMsg};

/// Why a link could not reach and greet its switchboard.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// The host did not resolve.
    #[error(transparent)]
    Resolve(std::io::Error),
    /// The host resolved to no address.
    #[error("no address")]
    NoAddress,
    /// The pinned id is not a valid key.
    #[error(transparent)]
    BadId(#[from] IdentityError),
    /// The switchboard's key could not be learned on first use.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The connection could not be set up (configuration, or the key check after it).
    #[error(transparent)]
    Net(#[from] NetError),
    /// quinn refused to start the dial.
    #[error(transparent)]
    Connect(#[from] quinn::ConnectError),
    /// The handshake did not finish within the bound.
    #[error("the switchboard handshake timed out")]
    HandshakeTimeout,
    /// The handshake failed.
    #[error(transparent)]
    Handshake(#[from] quinn::ConnectionError),
    /// The switchboard proved a key other than the pinned one.
    #[error("the switchboard proved another key")]
    OtherKey,
    /// The hello exchange failed.
    #[error(transparent)]
    Hello(#[from] HelloError),
    /// The node proved a key that is none of its cluster's.
    #[error("the switchboard proved {0}, which is not a key of this cluster")]
    NotInCluster(FeedId),
}

/// Why a link could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartLinkError {
    /// The text is not a switchboard or cluster.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The `switchboards` supervisor refused (not running, full).
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
}

/// The child id of the link to `cluster` under the `switchboards` supervisor.
pub fn child_id(cluster: &Cluster) -> String {
    format!("switchboard:{}", cluster.key())
}

/// Start a link to the switchboard or cluster `target` names, unless one runs already
/// (`Ok(false)`); `Ok(true)` if started now.
pub async fn start_link(ctx: &PeerContext, target: &str) -> Result<bool, StartLinkError> {
    let cluster = Cluster::parse(target)?;
    let args = SbLinkArgs {
        ctx: ctx.clone(),
        target: target.to_string(),
    };
    match ctx
        .links
        .start_worker(child_id(&cluster), SbLink, move || args.clone())
        .await
    {
        Ok(_) => Ok(true),
        Err(SupervisorError::DuplicateId(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The switchboard link actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SbLink;

/// What a link starts with.
#[derive(Clone)]
pub struct SbLinkArgs {
    /// The node's peer context (endpoint, node).
    pub ctx: PeerContext,
    /// `HOST:PORT` or `@ID@HOST:PORT`.
    pub target: String,
}

/// A link's state.
pub struct SbLinkState {
    args: SbLinkArgs,
    /// The switchboard or cluster, with the keys learned so far.
    target: Cluster,
    /// This round's members: each address the cluster's names resolved to.
    candidates: Vec<Candidate>,
    /// The member the current session is with.
    linked: Option<Linked>,
    /// When to dial again ([`Retry`]).
    retry: Retry,
    /// The state and reason last logged, so the log has one line per change of state.
    logged: Option<(LinkState, Option<String>)>,
    session: Option<Session>,
    /// Forgotten by the user (`kith switchboards forget`): closed, and dials no more.
    forgotten: bool,
    /// What this session's switchboard was last told of this node's presence.
    shown: Shown,
    _events: OwnedTask,
}

/// What a switchboard was last told of whom this node shows its presence to, and under which
/// key its status line was sealed (issue 19): each is sent again only when it changes.
#[derive(Default)]
struct Shown {
    visible_to: Option<Option<Vec<FeedId>>>,
    epoch: Option<u64>,
}

/// One address of a cluster member.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    addr: SocketAddr,
    /// Index of its member in the cluster.
    member: usize,
}

/// The member a session is with: its address and proven key.
#[derive(Clone, Copy, Debug)]
struct Linked {
    addr: SocketAddr,
    key: FeedId,
}

struct Session {
    out: mpsc::Sender<ClientMsg>,
    conn: quinn::Connection,
    relay: Option<Relay>,
    /// Introductions asked and not yet answered, bounded.
    asked: HashMap<FeedId, RpcReplyPort<Result<Relayed, IntroError>>>,
    /// Welcomed by the switchboard.
    joined: bool,
    /// Why the switchboard refused to admit this node, if it did (it then closes the link).
    refused: Option<(JoinRefusal, String)>,
    _tasks: [OwnedTask; 2],
}

/// The inner QUIC endpoint whose packets ride this link's datagrams.
struct Relay {
    socket: Arc<VirtualSocket>,
    endpoint: Arc<PeerEndpoint>,
    _tasks: [OwnedTask; 2],
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(relay) = &self.relay {
            relay.socket.close();
            // The relayed connections riding this link end now, not at their idle timeout.
            relay.endpoint.close(CloseCode::Normal);
        }
        self.conn.close(0u32.into(), b"bye");
        for (_, port) in self.asked.drain() {
            let _ = port.send(Err(IntroError::ConnectionEnded));
        }
    }
}

impl Actor for SbLink {
    type Msg = SbLinkMsg;
    type State = SbLinkState;
    type Arguments = SbLinkArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let target = Cluster::parse(&args.target)?;
        if !target.known_keys().is_empty() {
            remember(&args.ctx, &target);
        }
        let events = OwnedTask::spawn(forward_events(
            args.ctx.node.events.subscribe(),
            myself.clone(),
        ));
        args.ctx.relays.register(&args.target, myself.clone());
        myself.cast(SbLinkMsg::Connect)?;
        let state = SbLinkState {
            args,
            retry: Retry::new(target.members.len()),
            target,
            candidates: Vec::new(),
            linked: None,
            logged: None,
            session: None,
            forgotten: false,
            shown: Shown::default(),
            _events: events,
        };
        let mut state = state;
        report(&mut state, LinkState::Connecting, None, None, None);
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Stopped (forgotten, or restarting): what it said of who is online goes with it.
        state.session = None;
        state.args.ctx.node.online.forget(&state.args.target);
        state
            .args
            .ctx
            .relays
            .unregister(&state.args.target, &myself);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if state.forgotten {
            return Ok(());
        }
        match msg {
            SbLinkMsg::Forget => {
                tracing::info!(switchboard = %state.args.target, "switchboard forgotten; not dialling it again");
                state.forgotten = true;
                state.session = None;
                state.args.ctx.node.online.forget(&state.args.target);
                state.args.ctx.relays.forget(&state.args.target);
            }
            SbLinkMsg::Connect if state.session.is_none() => connect(&myself, state).await,
            SbLinkMsg::Connect => {}
            SbLinkMsg::Frame(frame) => on_frame(state, frame),
            SbLinkMsg::Introduce(to, reply) => introduce(state, to, reply),
            SbLinkMsg::Event(NodeEvent::WantsChanged) => {
                send(state, watch_list(state));
                show_presence(state);
            }
            SbLinkMsg::Event(NodeEvent::Blocked(_) | NodeEvent::AudienceChanged) => {
                show_presence(state)
            }
            SbLinkMsg::Event(NodeEvent::StatusChanged) => {
                state.shown.epoch = None;
                show_presence(state);
            }
            SbLinkMsg::Event(_) => {}
            SbLinkMsg::Closed(reason) => {
                tracing::debug!(switchboard = %state.args.target, %reason, "link down");
                state.args.ctx.node.online.forget(&state.args.target);
                state.linked = None;
                let unit = rand::random::<f64>();
                match state.session.take().and_then(|mut s| s.refused.take()) {
                    Some((why, refusal)) => {
                        let next = state.retry.refused(why, unit);
                        report(state, LinkState::Refused, None, Some(refusal), Some(next));
                        schedule(&myself, next);
                    }
                    None => {
                        let next = state.retry.failed(unit);
                        report(state, LinkState::Connecting, None, Some(reason), Some(next));
                        schedule(&myself, next);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Remember this switchboard (or cluster) with its pinned keys in the store, so the daemon
/// reconnects to it after a restart and a key learned on first use stays pinned (never
/// overwritten by an unpinned form: only targets with a key are written).
fn remember(ctx: &PeerContext, target: &Cluster) {
    let op = Op::Switchboard(target.key(), target.to_text());
    if let Err(e) = submit_queued(&ctx.node.writer, vec![op]) {
        tracing::debug!(switchboard = %target.key(), error = %e, "switchboard not remembered");
    }
}

/// Every address the cluster's members resolve to, in the order given (at most
/// [`SB_CLUSTER_ADDRS_MAX`]); a name that does not resolve is skipped, the last such error kept.
async fn resolve(target: &Cluster) -> Result<Vec<Candidate>, UplinkError> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut failed = None;
    for (member, m) in target.members.iter().enumerate() {
        match tokio::net::lookup_host(m.host.as_str()).await {
            Ok(addrs) => {
                for addr in addrs {
                    if out.len() < SB_CLUSTER_ADDRS_MAX && !out.iter().any(|c| c.addr == addr) {
                        out.push(Candidate { addr, member });
                    }
                }
            }
            Err(e) => failed = Some(e),
        }
    }
    match (out.is_empty(), failed) {
        (true, Some(e)) => Err(UplinkError::Resolve(e)),
        (true, None) => Err(UplinkError::NoAddress),
        (false, _) => Ok(out),
    }
}

/// The member to dial now: the cluster's names are resolved again at the start of each round.
async fn candidate(state: &mut SbLinkState) -> Result<Candidate, UplinkError> {
    if state.retry.starts_round() || state.candidates.is_empty() {
        state.candidates = resolve(&state.target).await?;
        state.retry.set_members(state.candidates.len());
    }
    state
        .candidates
        .get(state.retry.member())
        .copied()
        .ok_or(UplinkError::NoAddress)
}

async fn connect(myself: &ActorRef<SbLinkMsg>, state: &mut SbLinkState) {
    let opened = match candidate(state).await {
        Ok(member) => open(myself, state, member).await,
        Err(e) => Err(e),
    };
    match opened {
        Ok(session) => {
            // Its join went with the hello ([`open`]).
            state.session = Some(session);
            // A new session's switchboard knows nothing of this node's presence yet.
            state.shown = Shown::default();
            show_presence(state);
            send(state, watch_list(state));
            tracing::debug!(switchboard = %state.args.target, "connected to switchboard");
        }
        Err(e) => {
            tracing::debug!(switchboard = %state.args.target, error = %e, "switchboard not reached");
            let next = state.retry.failed(rand::random::<f64>());
            report(
                state,
                LinkState::Connecting,
                None,
                Some(e.to_string()),
                Some(next),
            );
            schedule(myself, next);
        }
    }
}

async fn open(
    myself: &ActorRef<SbLinkMsg>,
    state: &mut SbLinkState,
    candidate: Candidate,
) -> Result<Session, UplinkError> {
    let Candidate { addr, member } = candidate;
    let endpoint = &state.args.ctx.endpoint;
    let key = match state.target.rule(member) {
        KeyRule::Pinned(id) => id.verifying_key()?,
        // A member without its own key proves one of the cluster's: a probe names the key it
        // holds, which must be listed before it is dialled with it.
        KeyRule::AnyOf(keys) => {
            let key = pin(endpoint, addr, None).await?.key;
            if !keys.contains(&FeedId::from(key)) {
                return Err(UplinkError::NotInCluster(FeedId::from(key)));
            }
            key
        }
        // Trust on first use: a key learned now is pinned, and remembered across restarts.
        KeyRule::Learn => {
            let key = pin(endpoint, addr, None).await?.key;
            if let Some(m) = state.target.members.get_mut(member) {
                m.id = Some(FeedId::from(key));
            }
            remember(&state.args.ctx, &state.target);
            key
        }
    };
    let conn = dial_outer(state, addr, key).await?;
    state.linked = Some(Linked {
        addr,
        key: FeedId::from(key),
    });
    let ours = Hello::new(
        NodeRole::Daemon,
        Capabilities::of(&[Capability::Replicate, Capability::Presence]),
    );
    // The join rides behind the hello: one round trip for both (a refused hello refuses it).
    let join = ClientMsg::Join {
        invite: state.target.invite.clone(),
    };
    let join = frame::encode(&join, FRAME_BYTES_MAX).map_err(HelloError::from)?;
    let greeted = dial_hello_pipelined(&conn, &ours, &join).await?;
    let (out, rx) = mpsc::channel(SB_SEND_QUEUE);
    let tasks = [
        OwnedTask::spawn(write_loop(greeted.send, rx)),
        OwnedTask::spawn(read_loop(greeted.recv, myself.clone())),
    ];
    let relay = relay(&state.args.ctx, &conn);
    Ok(Session {
        out,
        conn,
        relay,
        asked: HashMap::new(),
        joined: false,
        refused: None,
        _tasks: tasks,
    })
}

/// Dial the switchboard with the uplink's transport (datagrams large enough for an inner
/// packet; keep-alives that notice a dead node within [`SB_LINK_IDLE_TIMEOUT`](crate::limits::SB_LINK_IDLE_TIMEOUT)), pinned to `key`.
async fn dial_outer(
    state: &SbLinkState,
    addr: SocketAddr,
    key: VerifyingKey,
) -> Result<quinn::Connection, UplinkError> {
    let signing = state.args.ctx.node.identity.signing_key();
    let config = uplink_client_config(signing, key)?;
    let endpoint = state.args.ctx.endpoint.quinn();
    let connecting = endpoint.connect_with(config, addr, &server_name(&key))?;
    let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
        .await
        .map_err(|_| UplinkError::HandshakeTimeout)??;
    if peer_key(&conn)? != key {
        return Err(UplinkError::OtherKey);
    }
    Ok(conn)
}

/// Start the inner endpoint over this link, if it can carry relayed packets. Connections that
/// arrive on it (introduced peers dialling us) go to peer connection actors like any other.
fn relay(ctx: &PeerContext, conn: &quinn::Connection) -> Option<Relay> {
    check_link(conn).ok()?;
    let socket = VirtualSocket::new(ctx.node.identity.id(), Arc::new(conn.clone()));
    let endpoint =
        PeerEndpoint::with_socket(socket.clone(), ctx.node.identity.signing_key()).ok()?;
    let endpoint = Arc::new(endpoint);
    let accept = OwnedTask::spawn(accept_relayed(ctx.clone(), Arc::clone(&endpoint)));
    let (outer, inner) = (conn.clone(), Arc::clone(&socket));
    let pump = OwnedTask::spawn(async move {
        let _ = pump(outer, inner).await;
    });
    Some(Relay {
        socket,
        endpoint,
        _tasks: [pump, accept],
    })
}

async fn accept_relayed(ctx: PeerContext, endpoint: Arc<PeerEndpoint>) {
    while let Some(incoming) = endpoint.incoming().await {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Ok((conn, key)) = accept(incoming).await {
                let _ = start_peer(&ctx, conn, FeedId::from(key), Direction::Inbound).await;
            }
        });
    }
}

fn introduce(
    state: &mut SbLinkState,
    to: FeedId,
    reply: RpcReplyPort<Result<Relayed, IntroError>>,
) {
    let Some(session) = state.session.as_mut() else {
        let _ = reply.send(Err(IntroError::NotConnected(state.args.target.clone())));
        return;
    };
    if session.relay.is_none() {
        let _ = reply.send(Err(IntroError::CannotRelay(state.args.target.clone())));
        return;
    }
    if session.asked.len() >= INTRODUCTIONS_PENDING_MAX {
        let _ = reply.send(Err(IntroError::TooManyPending));
        return;
    }
    if let Some(old) = session.asked.insert(to, reply) {
        let _ = old.send(Err(IntroError::Superseded));
    }
    send(state, ClientMsg::Introduce { to });
}

/// Tell the switchboard whom this node's presence is shown to, and its status line sealed under
/// the current key, where either changed (the audience is refreshed first: a follow, unfollow or
/// block may have changed it, and an unfollow rotates the key). The allow-list goes first, so a
/// status sealed under a new key never reaches a watcher who lost the view.
fn show_presence(state: &mut SbLinkState) {
    let online = state.args.ctx.node.online.clone();
    let refresh = online.refresh(&state.args.ctx.node.rolodex);
    if refresh.changed || refresh.rotated {
        // The peer connections give the (new) key to whoever is allowed now.
        let _ = state.args.ctx.node.events.send(NodeEvent::AudienceChanged);
    }
    let visible_to = online.visible_to();
    if state.shown.visible_to.as_ref() != Some(&visible_to) {
        send(
            state,
            ClientMsg::VisibleTo {
                ids: visible_to.clone(),
            },
        );
        state.shown.visible_to = Some(visible_to);
    }
    if state.shown.epoch == Some(online.key().epoch) {
        return;
    }
    match online.sealed_status(&state.args.ctx.node.identity.id()) {
        Ok((status, epoch)) => {
            send(state, ClientMsg::SetStatus { status });
            state.shown.epoch = Some(epoch);
        }
        Err(e) => tracing::warn!(error = %e, "status line not announced"),
    }
}

fn watch_list(state: &SbLinkState) -> ClientMsg {
    ClientMsg::Watch {
        ids: state.args.ctx.node.rolodex.following(),
    }
}

fn on_frame(state: &mut SbLinkState, frame: ServerMsg) {
    let via = state.args.target.clone();
    match frame {
        ServerMsg::Presence { id, online } => {
            let came = online.is_some() && state.args.ctx.node.online.get(&id).is_none();
            // A newer presence than the one this switchboard showed: the peer rejoined (its node
            // died, it moved to another member). A relayed connection with it rode its old link,
            // which is gone: close it now rather than at its idle timeout, and dial again.
            let before = state.args.ctx.node.online.reported_by(&via, &id);
            let rejoined =
                matches!((&before, &online), (Some(b), Some(n)) if n.since_ms > b.since_ms);
            if rejoined && state.args.ctx.connections.close_relayed(&id) {
                tracing::debug!(switchboard = %via, peer = %id.short(), "peer rejoined; its relayed connection closed");
            }
            let came = came || rejoined;
            state.args.ctx.node.online.report(&via, id, online);
            if came {
                let _ = state.args.ctx.node.events.send(NodeEvent::Online(id));
            }
        }
        ServerMsg::Welcome { observed } => {
            tracing::debug!(switchboard = %via, %observed, "joined");
            if let Some(session) = state.session.as_mut() {
                session.joined = true;
            }
            state.retry.welcomed();
            report(state, LinkState::Joined, Some(observed), None, None);
        }
        ServerMsg::Refused { reason } => {
            tracing::debug!(switchboard = %via, %reason, "switchboard refused");
            // Before the welcome it is the join that was refused, and the link will close.
            if let Some(session) = state.session.as_mut().filter(|s| !s.joined) {
                session.refused = Some((JoinRefusal::Other, reason));
            }
        }
        ServerMsg::JoinRefused { why, reason } => {
            tracing::debug!(switchboard = %via, %reason, "switchboard refused the join");
            if let Some(session) = state.session.as_mut() {
                session.refused = Some((why, reason));
            }
        }
        ServerMsg::IntroRequest { from } => {
            let mut answer = answer_for(&state.args.ctx, &from);
            if answer != IntroAnswer::Refuse && relayed(state, from).is_none() {
                answer = IntroAnswer::Refuse;
            }
            tracing::debug!(switchboard = %via, from = %from.short(), ?answer, "introduction asked");
            send(state, ClientMsg::IntroAnswer { from, answer });
        }
        ServerMsg::PunchTo { peer, observed } => {
            // This node answered direct: dial back now; it opens this side's NAT toward the
            // caller, whose relayed dial and punch run at the same time.
            let ctx = state.args.ctx.clone();
            tokio::spawn(async move { punch(&ctx, peer, observed).await });
        }
        ServerMsg::Introduced { peer, observed } => {
            let path = relayed(state, peer).map(|r| Relayed { observed, ..r });
            if let Some(port) = state.session.as_mut().and_then(|s| s.asked.remove(&peer)) {
                let _ = port.send(path.ok_or(IntroError::RelayGone));
            }
        }
        ServerMsg::IntroRefused {
            to,
            reason,
            declined,
        } => {
            if let Some(port) = state.session.as_mut().and_then(|s| s.asked.remove(&to)) {
                let error = match declined {
                    true => IntroError::Declined(reason),
                    false => IntroError::Refused(reason),
                };
                let _ = port.send(Err(error));
            }
        }
    }
}

/// Tell `kith status` where this link is (with when it tries again, if it is not joined), and
/// log a line when the state or its reason changed (one line per change, not per attempt).
fn report(
    state: &mut SbLinkState,
    link: LinkState,
    observed: Option<SocketAddr>,
    reason: Option<String>,
    next: Option<Next>,
) {
    let now = now_ms();
    let (next_attempt_ms, waiting_for_invite) = match next {
        Some(Next::RetryAfter(delay)) => {
            let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            (Some(now.saturating_add(ms)), false)
        }
        Some(Next::WaitForUser) => (None, true),
        None => (None, false),
    };
    let changed = state.logged.as_ref() != Some(&(link, reason.clone()));
    if changed {
        log_change(&state.args.target, link, reason.as_deref(), next);
        state.logged = Some((link, reason.clone()));
    }
    let id = match state.linked {
        Some(linked) => Some(linked.key),
        None => state.target.known_keys().first().copied(),
    };
    state.args.ctx.relays.report(LinkView {
        target: state.args.target.clone(),
        id: id.map(|id| id.to_string()),
        member: state.linked.map(|l| l.addr.to_string()),
        state: link,
        since_ms: now,
        observed: observed.map(|a| a.to_string()),
        reason,
        next_attempt_ms,
        waiting_for_invite,
    });
}

fn log_change(target: &str, link: LinkState, reason: Option<&str>, next: Option<Next>) {
    let reason = reason.unwrap_or("");
    let next = match next {
        Some(Next::RetryAfter(d)) => format!("next attempt in {} s", d.as_secs_f64().ceil()),
        Some(Next::WaitForUser) => {
            "waiting for a new invite code (start the daemon with --switchboard HOST:PORT#CODE)"
                .into()
        }
        None => String::new(),
    };
    match link {
        LinkState::Joined => tracing::info!(switchboard = %target, "joined the switchboard"),
        LinkState::Connecting => {
            tracing::info!(switchboard = %target, %reason, "switchboard not reached; {next}")
        }
        LinkState::Refused => {
            tracing::warn!(switchboard = %target, %reason, "the switchboard refused this node; {next}")
        }
    }
}

/// The callee's policy ([`intro_answer`]): direct for ids this node follows, the relay only or
/// a refusal for others (per the introductions setting), a refusal for blocked ids.
fn answer_for(ctx: &PeerContext, from: &FeedId) -> IntroAnswer {
    let rolodex = &ctx.node.rolodex;
    intro_answer(
        ctx.introductions,
        rolodex.is_following(from),
        rolodex.is_blocked(from),
    )
}

/// The relayed path to `peer` on this link (registering its address on the inner socket).
fn relayed(state: &SbLinkState, peer: FeedId) -> Option<Relayed> {
    let relay = state.session.as_ref()?.relay.as_ref()?;
    let addr = relay.socket.register_peer(peer).ok()?;
    Some(Relayed {
        endpoint: Arc::clone(&relay.endpoint),
        addr,
        observed: None,
    })
}

fn send(state: &SbLinkState, msg: ClientMsg) {
    if let Some(session) = &state.session {
        if session.out.try_send(msg).is_err() {
            tracing::warn!(switchboard = %state.args.target, "switchboard not reading; message dropped");
        }
    }
}

/// Dial again when `next` says (never, while waiting for a new invite code).
fn schedule(myself: &ActorRef<SbLinkMsg>, next: Next) {
    if let Next::RetryAfter(delay) = next {
        myself.send_after(delay, || SbLinkMsg::Connect);
    }
}

async fn write_loop(mut send: quinn::SendStream, mut rx: mpsc::Receiver<ClientMsg>) {
    while let Some(msg) = rx.recv().await {
        if stream::write_frame(&mut send, &msg).await.is_err() {
            return;
        }
    }
}

async fn read_loop(mut recv: quinn::RecvStream, myself: ActorRef<SbLinkMsg>) {
    let reason = loop {
        match stream::read_frame::<ServerMsg>(&mut recv, SB_FRAME_BYTES_MAX).await {
            Ok(Some(msg)) => {
                if myself.cast(SbLinkMsg::Frame(msg)).is_err() {
                    return;
                }
            }
            Ok(None) => break "switchboard finished".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    let _ = myself.cast(SbLinkMsg::Closed(reason));
}

async fn forward_events(mut events: broadcast::Receiver<NodeEvent>, myself: ActorRef<SbLinkMsg>) {
    loop {
        let event = match events.recv().await {
            Ok(
                e @ (NodeEvent::WantsChanged
                | NodeEvent::StatusChanged
                | NodeEvent::Blocked(_)
                | NodeEvent::AudienceChanged),
            ) => e,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => NodeEvent::WantsChanged,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if myself.cast(SbLinkMsg::Event(event)).is_err() {
            return;
        }
    }
}
