//! A daemon's link to one switchboard: stays connected, says who it is interested in, and keeps
//! the node's view of who is online.
//!
//! States: connecting (dial with backoff and jitter, [`redial_delay`]), joined (sends its status
//! line and its watch list — the ids it follows — and records the presence notices it gets). The
//! switchboard's key is pinned: given as `@ID@HOST:PORT`, or learned on first use (as SSH does)
//! and kept for the life of the actor. When the connection ends, everything this switchboard
//! said is forgotten and the link reconnects by itself. Started by the daemon's tree, one per
//! `--switchboard`, permanent.

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{broadcast, mpsc};

use crate::actors::OwnedTask;
use crate::events::NodeEvent;
use crate::identity::FeedId;
use crate::limits::{SB_FRAME_BYTES_MAX, SB_SEND_QUEUE};
use crate::net::hello::{dial_hello, Capabilities, Capability, Hello, NodeRole};
use crate::net::{stream, NetError};
use crate::peer::{redial_delay, PeerContext};
use crate::switchboard::{ClientMsg, ServerMsg};

/// Messages to a switchboard link.
pub enum SbLinkMsg {
    /// Connect now.
    Connect,
    /// A message from the switchboard.
    Frame(ServerMsg),
    /// A node event (wants or status changed).
    Event(NodeEvent),
    /// The connection ended.
    Closed(String),
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
    pinned: Option<FeedId>,
    attempt: u32,
    session: Option<Session>,
    _events: OwnedTask,
}

struct Session {
    out: mpsc::Sender<ClientMsg>,
    conn: quinn::Connection,
    _tasks: [OwnedTask; 2],
}

impl Drop for Session {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"bye");
    }
}

impl Actor for SbLink {
    type Msg = SbLinkMsg;
    type State = SbLinkState;
    type Arguments = SbLinkArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: Self::Arguments) -> Result<Self::State, ActorProcessingErr> {
        let pinned = match args.target.rsplit_once('@') {
            Some((id, _)) if id.starts_with('@') => Some(id.parse::<FeedId>()?),
            _ => None,
        };
        let events = OwnedTask::spawn(forward_events(args.ctx.node.events.subscribe(), myself.clone()));
        myself.cast(SbLinkMsg::Connect)?;
        Ok(SbLinkState { args, pinned, attempt: 0, session: None, _events: events })
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            SbLinkMsg::Connect if state.session.is_none() => connect(&myself, state).await,
            SbLinkMsg::Connect => {}
            SbLinkMsg::Frame(frame) => on_frame(state, frame),
            SbLinkMsg::Event(NodeEvent::WantsChanged) => send(state, watch_list(state)),
            SbLinkMsg::Event(NodeEvent::StatusChanged) => {
                let text = state.args.ctx.node.online.status();
                send(state, ClientMsg::SetStatus { text });
            }
            SbLinkMsg::Event(_) => {}
            SbLinkMsg::Closed(reason) => {
                tracing::info!(switchboard = %state.args.target, %reason, "switchboard connection ended");
                state.session = None;
                state.args.ctx.node.online.forget(&state.args.target);
                state.attempt = 1;
                retry(&myself, state);
            }
        }
        Ok(())
    }
}

fn host(target: &str) -> &str {
    match target.rsplit_once('@') {
        Some((id, host)) if id.starts_with('@') => host,
        _ => target,
    }
}

async fn connect(myself: &ActorRef<SbLinkMsg>, state: &mut SbLinkState) {
    match open(myself, state).await {
        Ok(session) => {
            state.attempt = 0;
            state.session = Some(session);
            let status = state.args.ctx.node.online.status();
            send(state, ClientMsg::Join { invite: None });
            send(state, ClientMsg::SetStatus { text: status });
            send(state, watch_list(state));
            tracing::info!(switchboard = %state.args.target, "connected to switchboard");
        }
        Err(e) => {
            tracing::debug!(switchboard = %state.args.target, error = %e, "switchboard not reached");
            state.attempt += 1;
            retry(myself, state);
        }
    }
}

async fn open(myself: &ActorRef<SbLinkMsg>, state: &mut SbLinkState) -> Result<Session, String> {
    let endpoint = &state.args.ctx.endpoint;
    let addr = tokio::net::lookup_host(host(&state.args.target))
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let key = match state.pinned {
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
    state.pinned = Some(FeedId::from(key));
    let (conn, _) = endpoint.dial(addr, key).await.map_err(|e| e.to_string())?;
    let ours = Hello::new(NodeRole::Daemon, Capabilities::of(&[Capability::Replicate, Capability::Presence]));
    let greeted = dial_hello(&conn, &ours).await.map_err(|e| e.to_string())?;
    let (out, rx) = mpsc::channel(SB_SEND_QUEUE);
    let tasks = [
        OwnedTask::spawn(write_loop(greeted.send, rx)),
        OwnedTask::spawn(read_loop(greeted.recv, myself.clone())),
    ];
    Ok(Session { out, conn, _tasks: tasks })
}

fn watch_list(state: &SbLinkState) -> ClientMsg {
    ClientMsg::Watch { ids: state.args.ctx.node.rolodex.following() }
}

fn on_frame(state: &SbLinkState, frame: ServerMsg) {
    let via = &state.args.target;
    match frame {
        ServerMsg::Presence { id, online } => state.args.ctx.node.online.report(via, id, online),
        ServerMsg::Welcome { observed } => tracing::debug!(switchboard = %via, %observed, "joined"),
        ServerMsg::Refused { reason } => tracing::warn!(switchboard = %via, %reason, "switchboard refused"),
    }
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
