//! A rolodex entry actor: exists while one entry is active — dialling, connected or backing
//! off — and hibernates (stops; its state is the rolodex record, already durable) when idle.
//!
//! States: dialling (tries each address hint in turn), connected (waits for the connection to
//! end), backing off (a timer with exponential delay and jitter, [`redial_delay`]). It stops when
//! the entry is no longer followed, is blocked, or has no address. Started by the rolodex actor
//! through a handle to the entries dynamic supervisor (transient: a crash is restarted, a
//! hibernation is not).

use std::net::SocketAddr;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::broadcast;

use crate::actors::listener::start_peer;
use crate::actors::sb_link::SbLinkMsg;
use crate::limits::INTRODUCTION_TIMEOUT;
use ractor::rpc::CallResult;
use crate::actors::OwnedTask;
use crate::events::NodeEvent;
use crate::identity::FeedId;
use crate::peer::{punch, redial_delay, Direction, PeerContext};

/// Messages to a dialer.
pub enum DialerMsg {
    /// Try to connect now.
    Dial,
    /// The connection with this entry ended.
    Disconnected,
    /// The entry was blocked.
    Blocked,
}

/// The rolodex entry (dialer) actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dialer;

/// What a dialer starts with.
#[derive(Clone)]
pub struct DialerArgs {
    /// Shared peer context.
    pub ctx: PeerContext,
    /// The entry.
    pub id: FeedId,
}

/// A dialer's state.
pub struct DialerState {
    args: DialerArgs,
    attempt: u32,
    _watch: OwnedTask,
}

impl Actor for Dialer {
    type Msg = DialerMsg;
    type State = DialerState;
    type Arguments = DialerArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: Self::Arguments) -> Result<Self::State, ActorProcessingErr> {
        let watch = OwnedTask::spawn(watch(args.ctx.node.events.subscribe(), args.id, myself.clone()));
        myself.cast(DialerMsg::Dial)?;
        Ok(DialerState { args, attempt: 0, _watch: watch })
    }

    async fn handle(&self, myself: ActorRef<Self::Msg>, msg: Self::Msg, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        match msg {
            DialerMsg::Dial => dial(&myself, state).await,
            DialerMsg::Disconnected => {
                state.attempt = 1;
                back_off(&myself, state);
            }
            DialerMsg::Blocked => myself.stop(Some("blocked".into())),
        }
        Ok(())
    }
}

async fn dial(myself: &ActorRef<DialerMsg>, state: &mut DialerState) {
    let DialerArgs { ctx, id } = &state.args;
    let Some(entry) = ctx.node.rolodex.get(id) else { return myself.stop(Some("forgotten".into())) };
    if !entry.following || entry.blocked || (entry.addrs.is_empty() && ctx.relays.configured() == 0) {
        return myself.stop(Some("idle: hibernating".into()));
    }
    if ctx.connections.contains(id) {
        return;
    }
    let Ok(key) = id.verifying_key() else { return myself.stop(Some("invalid key".into())) };
    for hint in &entry.addrs {
        for addr in resolve(hint).await {
            match ctx.endpoint.dial(addr, key).await {
                Ok((conn, _)) => match start_peer(ctx, conn, *id, Direction::Outbound).await {
                    Ok(()) => {
                        state.attempt = 0;
                        return;
                    }
                    Err(e) => tracing::debug!(peer = %id.short(), error = %e, "connection not started"),
                },
                Err(e) => tracing::debug!(peer = %id.short(), %addr, error = %e, "dial failed"),
            }
        }
    }
    if through_switchboards(ctx, *id, key).await {
        state.attempt = 0;
        return;
    }
    state.attempt += 1;
    back_off(myself, state);
}

/// Ask each switchboard link for an introduction, and dial through the first that accepts.
async fn through_switchboards(ctx: &PeerContext, id: FeedId, key: ed25519_dalek::VerifyingKey) -> bool {
    for link in ctx.relays.links() {
        let reply = link.call(|port| SbLinkMsg::Introduce(id, port), Some(INTRODUCTION_TIMEOUT)).await;
        let relayed = match reply {
            Ok(CallResult::Success(Ok(relayed))) => relayed,
            Ok(CallResult::Success(Err(reason))) => {
                tracing::debug!(peer = %id.short(), %reason, "introduction refused");
                continue;
            }
            _ => continue,
        };
        // A direct path first (traffic off the switchboard), then the relay.
        if let Some(observed) = relayed.observed {
            if punch(ctx, id, observed).await {
                return true;
            }
        }
        match relayed.endpoint.dial(relayed.addr, key).await {
            Ok((conn, _)) => {
                if start_peer(ctx, conn, id, Direction::Outbound).await.is_ok() {
                    return true;
                }
            }
            Err(e) => tracing::debug!(peer = %id.short(), error = %e, "relayed dial failed"),
        }
    }
    false
}

fn back_off(myself: &ActorRef<DialerMsg>, state: &DialerState) {
    let delay = redial_delay(state.attempt.max(1), rand::random::<f64>());
    tracing::debug!(peer = %state.args.id.short(), attempt = state.attempt, ?delay, "redialling later");
    myself.send_after(delay, || DialerMsg::Dial);
}

async fn resolve(hint: &str) -> Vec<SocketAddr> {
    match tokio::net::lookup_host(hint).await {
        Ok(addrs) => addrs.collect(),
        Err(_) => Vec::new(),
    }
}

async fn watch(mut events: broadcast::Receiver<NodeEvent>, id: FeedId, myself: ActorRef<DialerMsg>) {
    loop {
        let msg = match events.recv().await {
            Ok(NodeEvent::Disconnected(who)) if who == id => DialerMsg::Disconnected,
            Ok(NodeEvent::Blocked(who)) if who == id => DialerMsg::Blocked,
            // They just came online at a switchboard: no need to wait out the backoff.
            Ok(NodeEvent::Online(who)) if who == id => DialerMsg::Dial,
            Ok(NodeEvent::WantsChanged) | Err(broadcast::error::RecvError::Lagged(_)) => DialerMsg::Dial,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if myself.cast(msg).is_err() {
            return;
        }
    }
}
