//! A daemon's link to one switchboard: stays connected, says who it is interested in, and keeps
//! the node's view of who is online.
//!
//! States: connecting (dial with backoff and jitter, [`redial_delay`]), joined (sends its status
//! line and its watch list — the ids it follows — and records the presence notices it gets). The
//! switchboard's key is pinned: given as `@ID@HOST:PORT`, or learned on first use (as SSH does)
//! and kept for the life of the actor. When the connection ends, everything this switchboard
//! said is forgotten and the link reconnects by itself. Started by the daemon's tree, one per
//! `--switchboard`, permanent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{broadcast, mpsc};

use crate::daemon::events::NodeEvent;
use crate::daemon::listener::start_peer;
use crate::daemon::node::submit_queued;
use crate::daemon::peer::{punch, Direction};
use crate::daemon::peer::{redial_delay, PeerContext};
use crate::daemon::uplink::target::Target;
use crate::daemon::uplink::{LinkState, LinkView};
use crate::feed::now_ms;
use crate::identity::FeedId;
use crate::ingest::Op;
use crate::limits::{
    HANDSHAKE_TIMEOUT, INTRODUCTIONS_PENDING_MAX, SB_FRAME_BYTES_MAX, SB_SEND_QUEUE,
};
use crate::net::endpoint::accept;
use crate::net::hello::{dial_hello, Capabilities, Capability, Hello, NodeRole};
use crate::net::tls::{peer_key, server_name};
use crate::net::PeerEndpoint;
use crate::net::{stream, NetError};
use crate::relay::config::{check_link, outer_client_config};
use crate::relay::{pump, VirtualSocket};
use crate::runtime::OwnedTask;
use crate::wire::switchboard::{ClientMsg, ServerMsg};

/// Messages to a switchboard link.
pub enum SbLinkMsg {
    /// Connect now.
    Connect,
    /// A message from the switchboard.
    Frame(ServerMsg),
    /// A node event (wants or status changed).
    Event(NodeEvent),
    /// Ask the switchboard to introduce this node to an id; the reply carries the relayed
    /// endpoint and the address to dial them at through it, or why not.
    Introduce(FeedId, RpcReplyPort<Result<Relayed, String>>),
    /// The connection ended.
    Closed(String),
}

/// A relayed path to a peer: dial `addr` on `endpoint` (the inner QUIC endpoint over the
/// switchboard link).
#[derive(Clone)]
pub struct Relayed {
    /// The inner endpoint.
    pub endpoint: Arc<PeerEndpoint>,
    /// The peer's address on it.
    pub addr: SocketAddr,
    /// Where the switchboard sees the peer (for a direct attempt first).
    pub observed: Option<SocketAddr>,
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
    target: Target,
    attempt: u32,
    session: Option<Session>,
    _events: OwnedTask,
}

struct Session {
    out: mpsc::Sender<ClientMsg>,
    conn: quinn::Connection,
    relay: Option<Relay>,
    /// Introductions asked and not yet answered, bounded.
    asked: HashMap<FeedId, RpcReplyPort<Result<Relayed, String>>>,
    /// Welcomed by the switchboard.
    joined: bool,
    /// Why the switchboard refused to admit this node, if it did (it then closes the link).
    refused: Option<String>,
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
        }
        self.conn.close(0u32.into(), b"bye");
        for (_, port) in self.asked.drain() {
            let _ = port.send(Err("the switchboard connection ended".into()));
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
        let target = Target::parse(&args.target)?;
        if target.id.is_some() {
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
            target,
            attempt: 0,
            session: None,
            _events: events,
        };
        report(&state, LinkState::Connecting, None, None);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SbLinkMsg::Connect if state.session.is_none() => connect(&myself, state).await,
            SbLinkMsg::Connect => {}
            SbLinkMsg::Frame(frame) => on_frame(state, frame),
            SbLinkMsg::Introduce(to, reply) => introduce(state, to, reply),
            SbLinkMsg::Event(NodeEvent::WantsChanged) => send(state, watch_list(state)),
            SbLinkMsg::Event(NodeEvent::StatusChanged) => {
                let text = state.args.ctx.node.online.status();
                send(state, ClientMsg::SetStatus { text });
            }
            SbLinkMsg::Event(_) => {}
            SbLinkMsg::Closed(reason) => {
                tracing::debug!(switchboard = %state.args.target, "link down");
                tracing::info!(switchboard = %state.args.target, %reason, "switchboard connection ended");
                match state.session.take().and_then(|mut s| s.refused.take()) {
                    Some(refusal) => report(state, LinkState::Refused, None, Some(refusal)),
                    None => report(state, LinkState::Connecting, None, Some(reason)),
                }
                state.args.ctx.node.online.forget(&state.args.target);
                state.attempt = 1;
                retry(&myself, state);
            }
        }
        Ok(())
    }
}

/// Remember this switchboard with its pinned key in the store, so the daemon reconnects to it
/// after a restart and a key learned on first use stays pinned (never overwritten by an
/// unpinned form: only targets with a key are written).
fn remember(ctx: &PeerContext, target: &Target) {
    let op = Op::Switchboard(target.host.clone(), target.to_text());
    if let Err(e) = submit_queued(&ctx.node.writer, vec![op]) {
        tracing::debug!(switchboard = %target.host, error = %e, "switchboard not remembered");
    }
}

async fn connect(myself: &ActorRef<SbLinkMsg>, state: &mut SbLinkState) {
    match open(myself, state).await {
        Ok(session) => {
            state.attempt = 0;
            state.session = Some(session);
            let status = state.args.ctx.node.online.status();
            let invite = state.target.invite.clone();
            send(state, ClientMsg::Join { invite });
            send(state, ClientMsg::SetStatus { text: status });
            send(state, watch_list(state));
            tracing::info!(switchboard = %state.args.target, "connected to switchboard");
        }
        Err(e) => {
            tracing::debug!(switchboard = %state.args.target, error = %e, "switchboard not reached");
            report(state, LinkState::Connecting, None, Some(e));
            state.attempt += 1;
            retry(myself, state);
        }
    }
}

async fn open(myself: &ActorRef<SbLinkMsg>, state: &mut SbLinkState) -> Result<Session, String> {
    let endpoint = &state.args.ctx.endpoint;
    let addr = tokio::net::lookup_host(state.target.host.as_str())
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let key = match state.target.id {
        Some(id) => id.verifying_key().map_err(|e| e.to_string())?,
        None => {
            // Trust on first use: expect our own key, which only we can prove; the error names
            // the key the switchboard proved, which is then pinned.
            let own = state.args.ctx.node.identity.signing_key().verifying_key();
            match endpoint.dial(addr, own).await {
                Err(NetError::PeerKeyMismatch(m)) => m.presented,
                Err(e) => return Err(e.to_string()),
                Ok(_) => return Err("that address is this node itself".into()),
            }
        }
    };
    if state.target.id.is_none() {
        state.target.id = Some(FeedId::from(key));
        remember(&state.args.ctx, &state.target);
    }
    let conn = dial_outer(state, addr, key).await?;
    let ours = Hello::new(
        NodeRole::Daemon,
        Capabilities::of(&[Capability::Replicate, Capability::Presence]),
    );
    let greeted = dial_hello(&conn, &ours).await.map_err(|e| e.to_string())?;
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

/// Dial the switchboard with the relay link's transport (datagrams large enough for an inner
/// packet), pinned to `key`.
async fn dial_outer(
    state: &SbLinkState,
    addr: SocketAddr,
    key: VerifyingKey,
) -> Result<quinn::Connection, String> {
    let signing = state.args.ctx.node.identity.signing_key();
    let config = outer_client_config(signing, key).map_err(|e| e.to_string())?;
    let endpoint = state.args.ctx.endpoint.quinn();
    let connecting = endpoint
        .connect_with(config, addr, &server_name(&key))
        .map_err(|e| e.to_string())?;
    let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
        .await
        .map_err(|_| "the switchboard handshake timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if peer_key(&conn).map_err(|e| e.to_string())? != key {
        return Err("the switchboard proved another key".into());
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

fn introduce(state: &mut SbLinkState, to: FeedId, reply: RpcReplyPort<Result<Relayed, String>>) {
    let Some(session) = state.session.as_mut() else {
        let _ = reply.send(Err(format!(
            "not connected to the switchboard {}",
            state.args.target
        )));
        return;
    };
    if session.relay.is_none() {
        let _ = reply.send(Err(format!(
            "the switchboard {} cannot relay on this path",
            state.args.target
        )));
        return;
    }
    if session.asked.len() >= INTRODUCTIONS_PENDING_MAX {
        let _ = reply.send(Err("too many introductions pending".into()));
        return;
    }
    if let Some(old) = session.asked.insert(to, reply) {
        let _ = old.send(Err("superseded by a newer request".into()));
    }
    send(state, ClientMsg::Introduce { to });
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
            report(state, LinkState::Joined, Some(observed), None);
        }
        ServerMsg::Refused { reason } => {
            tracing::warn!(switchboard = %via, %reason, "switchboard refused");
            // Before the welcome it is the join that was refused, and the link will close.
            if let Some(session) = state.session.as_mut().filter(|s| !s.joined) {
                session.refused = Some(reason);
            }
        }
        ServerMsg::IntroRequest { from, observed } => {
            let accept = accepts(&state.args.ctx, &from) && relayed(state, from).is_some();
            tracing::info!(switchboard = %via, from = %from.short(), accept, "introduction asked");
            send(state, ClientMsg::IntroAnswer { from, accept });
            if accept {
                // Dial back at the same time: it opens this side's NAT toward the caller.
                let ctx = state.args.ctx.clone();
                tokio::spawn(async move { punch(&ctx, from, observed).await });
            }
        }
        ServerMsg::Introduced { peer, observed } => {
            let path = relayed(state, peer).map(|r| Relayed {
                observed: Some(observed),
                ..r
            });
            if let Some(port) = state.session.as_mut().and_then(|s| s.asked.remove(&peer)) {
                let _ = port.send(path.ok_or_else(|| "the relayed endpoint is gone".to_string()));
            }
        }
        ServerMsg::IntroRefused { to, reason } => {
            if let Some(port) = state.session.as_mut().and_then(|s| s.asked.remove(&to)) {
                let _ = port.send(Err(reason));
            }
        }
    }
}

/// Tell `kith status` where this link is.
fn report(
    state: &SbLinkState,
    link: LinkState,
    observed: Option<SocketAddr>,
    reason: Option<String>,
) {
    state.args.ctx.relays.report(LinkView {
        target: state.args.target.clone(),
        id: state.target.id.map(|id| id.to_string()),
        state: link,
        since_ms: now_ms(),
        observed: observed.map(|a| a.to_string()),
        reason,
    });
}

/// The callee's policy: accept introductions only from ids this node follows and has not
/// blocked.
fn accepts(ctx: &PeerContext, from: &FeedId) -> bool {
    ctx.node.rolodex.is_following(from) && !ctx.node.rolodex.is_blocked(from)
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

fn retry(myself: &ActorRef<SbLinkMsg>, state: &SbLinkState) {
    let delay = redial_delay(state.attempt.max(1), rand::random::<f64>());
    myself.send_after(delay, || SbLinkMsg::Connect);
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
            Ok(e @ (NodeEvent::WantsChanged | NodeEvent::StatusChanged)) => e,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => NodeEvent::WantsChanged,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if myself.cast(SbLinkMsg::Event(event)).is_err() {
            return;
        }
    }
}
