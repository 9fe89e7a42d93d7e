//! A rolodex entry actor: exists while one entry is active — dialling, connected or backing
//! off — and hibernates (stops; its state is the rolodex record, already durable) when idle.
//!
//! States: dialling (tries each address hint in turn, then the switchboards: relay first, see
//! [`crate::daemon::punch`]), connected (waits for the connection to end), backing off (a timer
//! with exponential delay and jitter, [`redial_delay`]). While a connection rides a switchboard
//! relay, it asks for a fresh introduction now and then ([`repunch_delay`]) and tries the
//! direct path again: NATs and networks change, and a path that works takes the traffic off the
//! switchboard (the direct connection replaces the relayed one, see
//! [`crate::daemon::peer::keep_new`]). A relayed connection the peer dialled is tried at once
//! (this node may just have followed it back, so the peer now lets addresses cross). A
//! relay-only answer (the peer does not follow this node) ends the tries until the connection
//! ends: nothing would be punched. It stops when
//! the entry is no longer followed, is blocked, or has no address. Started by the rolodex actor
//! through a handle to the entries dynamic supervisor (transient: a crash is restarted, a
//! hibernation is not).

use std::net::SocketAddr;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::broadcast;

use crate::daemon::context::PeerContext;
use crate::daemon::events::NodeEvent;
use crate::daemon::listener::start_peer;
use crate::daemon::peer::Direction;
use crate::daemon::punch::{introduce, punch, through_switchboards};
use crate::identity::FeedId;
use crate::runtime::backoff::{redial_delay, repunch_delay};
use crate::runtime::OwnedTask;
use std::time::Duration;

/// Messages to a dialer.
pub enum DialerMsg {
    /// Try to connect now.
    Dial,
    /// The connection with this entry ended.
    Disconnected,
    /// The entry was blocked.
    Blocked,
    /// Try the direct path again while the connection rides a relay.
    Repunch,
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
    /// Tries of the direct path under the current relayed connection.
    repunch_attempt: u32,
    /// A [`DialerMsg::Repunch`] is on its way (at most one at a time).
    repunch_pending: bool,
    /// The peer answered relay only under the current connection: no direct path to try.
    relay_only: bool,
    _watch: OwnedTask,
}

impl Actor for Dialer {
    type Msg = DialerMsg;
    type State = DialerState;
    type Arguments = DialerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let watch = OwnedTask::spawn(watch(
            args.ctx.node.events.subscribe(),
            args.id,
            myself.clone(),
        ));
        myself.cast(DialerMsg::Dial)?;
        Ok(DialerState {
            args,
            attempt: 0,
            repunch_attempt: 0,
            repunch_pending: false,
            relay_only: false,
            _watch: watch,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DialerMsg::Dial => dial(&myself, state).await,
            DialerMsg::Disconnected => {
                state.attempt = 1;
                state.repunch_attempt = 0;
                state.relay_only = false;
                back_off(&myself, state);
            }
            DialerMsg::Blocked => myself.stop(Some("blocked".into())),
            DialerMsg::Repunch => repunch(&myself, state).await,
        }
        Ok(())
    }
}

async fn dial(myself: &ActorRef<DialerMsg>, state: &mut DialerState) {
    let DialerArgs { ctx, id } = &state.args;
    let Some(entry) = ctx.node.rolodex.get(id) else {
        return myself.stop(Some("forgotten".into()));
    };
    if !entry.following || entry.blocked || (entry.addrs.is_empty() && ctx.relays.configured() == 0)
    {
        return myself.stop(Some("idle: hibernating".into()));
    }
    if ctx.connections.contains(id) {
        return schedule_repunch(myself, state);
    }
    let Ok(key) = id.verifying_key() else {
        return myself.stop(Some("invalid key".into()));
    };
    for hint in &entry.addrs {
        for addr in resolve(hint).await {
            match ctx.endpoint.dial(addr, key).await {
                Ok((conn, _)) => match start_peer(ctx, conn, *id, Direction::Outbound).await {
                    Ok(()) => {
                        state.attempt = 0;
                        return schedule_repunch(myself, state);
                    }
                    Err(e) => {
                        tracing::debug!(peer = %id.short(), error = %e, "connection not started")
                    }
                },
                Err(e) => tracing::debug!(peer = %id.short(), %addr, error = %e, "dial failed"),
            }
        }
    }
    match through_switchboards(ctx, *id).await {
        Ok(()) => {
            state.attempt = 0;
            return schedule_repunch(myself, state);
        }
        Err(reasons) => {
            for e in reasons {
                tracing::debug!(peer = %id.short(), error = %e, "not reached through a switchboard");
            }
        }
    }
    state.attempt += 1;
    back_off(myself, state);
}

/// How the connection with `id` is up on a relay, if it is.
fn relayed(ctx: &PeerContext, id: &FeedId) -> Option<Direction> {
    ctx.connections
        .via(id)
        .filter(|via| via.relayed)
        .map(|via| via.direction)
}

/// Schedules the next try of the direct path, if the connection rides a relay, the peer did not
/// answer relay only, and no try is already on its way. A relayed connection the peer dialled is
/// tried at once the first time (see the top of this file).
fn schedule_repunch(myself: &ActorRef<DialerMsg>, state: &mut DialerState) {
    let Some(direction) = relayed(&state.args.ctx, &state.args.id) else {
        return;
    };
    if state.repunch_pending || state.relay_only {
        return;
    }
    state.repunch_pending = true;
    let delay = match (direction, state.repunch_attempt) {
        (Direction::Inbound, 0) => Duration::ZERO,
        _ => repunch_delay(state.repunch_attempt + 1, rand::random::<f64>()),
    };
    tracing::debug!(peer = %state.args.id.short(), ?delay, "relayed; trying the direct path again later");
    myself.send_after(delay, || DialerMsg::Repunch);
}

/// A fresh introduction (the callee dials back) and a punch, through each switchboard until the
/// connection is direct; otherwise the next try later, unless the peer answered relay only.
async fn repunch(myself: &ActorRef<DialerMsg>, state: &mut DialerState) {
    state.repunch_pending = false;
    let DialerArgs { ctx, id } = &state.args;
    if relayed(ctx, id).is_none() {
        state.repunch_attempt = 0;
        return;
    }
    for link in ctx.relays.links() {
        let observed = match introduce(ctx, &link, *id).await {
            Ok(path) => path.observed,
            Err(_) => continue,
        };
        let Some(observed) = observed else {
            tracing::debug!(peer = %id.short(), "the peer answered relay only; staying on the relay");
            state.relay_only = true;
            return;
        };
        punch(ctx, *id, observed).await;
        if !ctx.connections.via(id).is_some_and(|via| via.relayed) {
            tracing::info!(peer = %id.short(), %observed, "moved off the relay onto a direct path");
            state.repunch_attempt = 0;
            return;
        }
    }
    state.repunch_attempt = state.repunch_attempt.saturating_add(1);
    schedule_repunch(myself, state);
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

async fn watch(
    mut events: broadcast::Receiver<NodeEvent>,
    id: FeedId,
    myself: ActorRef<DialerMsg>,
) {
    loop {
        let msg = match events.recv().await {
            Ok(NodeEvent::Disconnected(who)) if who == id => DialerMsg::Disconnected,
            Ok(NodeEvent::Blocked(who)) if who == id => DialerMsg::Blocked,
            // They just came online at a switchboard: no need to wait out the backoff.
            Ok(NodeEvent::Online(who)) if who == id => DialerMsg::Dial,
            Ok(NodeEvent::WantsChanged) | Err(broadcast::error::RecvError::Lagged(_)) => {
                DialerMsg::Dial
            }
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if myself.cast(msg).is_err() {
            return;
        }
    }
}
