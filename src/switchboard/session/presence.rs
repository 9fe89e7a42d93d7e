//! A session's presence part: admission (join, invite codes), the peer's status line and whom
//! it lets see its presence, the ids it watches and the notices it is sent about them.
//!
//! Why apart from the actor: these are the session's steps on the presence tracker and the
//! watchers index; the actor file only dispatches to them.
//!
//! Visibility: a peer's presence is shown only to the watchers it allows
//! ([`ClientMsg::VisibleTo`](crate::wire::switchboard::ClientMsg::VisibleTo), carried in the
//! CRDT meta so every node of the cluster enforces it; nobody until the peer says). To anyone
//! else it looks exactly like an offline peer: a session tells its peer only what *its* view of
//! an id changed to (`shown`), so a hidden peer's joins, status changes and leaves make no frame
//! at all for a watcher it does not allow, as for an id that is offline. Ids taken off the list
//! are also sent to the other nodes at once ([`NodeMsg::Revoke`]), so they lose the view there
//! within a round trip rather than at the next presence broadcast. The status line in the meta
//! is sealed end to end by the peer; the switchboard never reads it.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Instant;

use crate::feed::now_ms;
use crate::identity::FeedId;
use crate::limits::{JOIN_REFUSED_LINGER, WATCH_IDS_MAX};
use crate::switchboard::context::{Counters, SbContext};
use crate::switchboard::invites::{Admitted, InviteError};
use crate::switchboard::join_guesses::TooManyGuesses;
use crate::switchboard::messages::SbSessionMsg;
use crate::wire::switchboard::JoinRefusal;
use crate::wire::switchboard::{check_sealed_status, check_visible_to, SealedStatus, TrackedMeta};
use crate::wire::switchboard::{NodeMsg, PeerMeta, ServerMsg, PEERS_TOPIC};

use super::io::{send, start_relay};
use super::SbSessionState;

/// What the presence CRDT holds about this peer.
fn meta(state: &SbSessionState) -> Vec<u8> {
    TrackedMeta {
        peer: PeerMeta {
            since_ms: state.since_ms,
            node: state.ctx.node.clone(),
            status: state.status.clone(),
        },
        visible_to: state.visible_to.clone(),
        seq: state.meta_seq,
    }
    .encode()
}

/// The peer joins: admitted (an invite spent, if needed), tracked, registered for introductions
/// and relaying, welcomed; or refused, and the session ends shortly. False ends the session.
pub(super) async fn join(state: &mut SbSessionState, invite: Option<String>) -> bool {
    if state.joined {
        return true;
    }
    let addr = state.conn.remote_address().ip();
    if let Err(e) = admit(&state.ctx, state.peer, addr, invite.as_deref()) {
        let why = e.refusal();
        state.ctx.counters.refuse_join(why);
        let reason = e.to_string();
        let _ = send(state, ServerMsg::JoinRefused { why, reason });
        // Ending the session now would close the connection before the refusal is written
        // (closing discards unsent stream data): the peer closes once it has read it, else the
        // session ends after a short linger.
        state.join_refused = true;
        // (The timer's task is detached: it ends with the linger, or at once if the session
        // has already stopped.)
        drop(state.me.send_after(JOIN_REFUSED_LINGER, || {
            SbSessionMsg::Closed("join refused".into())
        }));
        return true;
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

/// Why a join was refused: the invite policy, or too many wrong codes before this one.
#[derive(Debug, thiserror::Error)]
enum JoinError {
    #[error(transparent)]
    Invite(#[from] InviteError),
    #[error(transparent)]
    Throttled(#[from] TooManyGuesses),
}

impl JoinError {
    /// What the refused daemon should do about it: a throttled one tries again later.
    fn refusal(&self) -> JoinRefusal {
        match self {
            Self::Invite(e) => e.refusal(),
            Self::Throttled(_) => JoinRefusal::Busy,
        }
    }
}

/// Open membership admits anyone; an invite-only switchboard admits its members, and spends an
/// invite code to make a new one. A non-member whose key or address sent too many wrong codes
/// is refused before its code is looked at; a wrong code is charged to both.
fn admit(
    ctx: &SbContext,
    peer: FeedId,
    addr: IpAddr,
    invite: Option<&str>,
) -> Result<(), JoinError> {
    let Some(invites) = &ctx.invites else {
        return Ok(());
    };
    let mut file = invites.lock().unwrap_or_else(|p| p.into_inner());
    let mut guesses = ctx.join_guesses.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    let member = file.invites.members().contains_key(&peer.to_string());
    if invite.is_some() && !member {
        if let Err(e) = guesses.check(&peer, addr, now) {
            Counters::bump(&ctx.counters.join_guesses_throttled);
            return Err(e.into());
        }
    }
    match file.invites.admit(peer, invite, now_ms()) {
        Ok(Admitted::Member) => Ok(()),
        Ok(Admitted::NewMember) => Ok(file.save()?),
        Err(e @ (InviteError::Unknown | InviteError::Expired)) => {
            guesses.wrong(peer, addr, now);
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The peer sets its sealed status line (checked), published in its presence meta.
pub(super) async fn set_status(state: &mut SbSessionState, status: Option<SealedStatus>) -> bool {
    if let Err(reason) = check_sealed_status(&status) {
        return send(state, ServerMsg::Refused { reason });
    }
    state.status = status;
    publish(state).await
}

/// The peer says who may see its presence (checked), published in its presence meta; the
/// watchers' sessions, on every node, then tell theirs what their view changed to.
pub(super) async fn visible_to(state: &mut SbSessionState, ids: Option<Vec<FeedId>>) -> bool {
    if let Err(reason) = check_visible_to(&ids) {
        return send(state, ServerMsg::Refused { reason });
    }
    let removed: Vec<FeedId> = match (&state.visible_to, &ids) {
        (Some(old), Some(new)) => old.iter().filter(|id| !new.contains(id)).copied().collect(),
        _ => Vec::new(),
    };
    state.visible_to = ids;
    if !publish(state).await {
        return false;
    }
    // This node's watchers are told through the notifier at once; the other nodes' would wait
    // for the next presence broadcast, so they are told now.
    if !removed.is_empty() {
        let revoke = NodeMsg::Revoke {
            owner: state.peer,
            since_ms: state.since_ms,
            seq: state.meta_seq,
            watchers: removed,
        };
        state.ctx.nodes.send_all(&revoke);
    }
    true
}

/// Publish the peer's meta, one version newer.
async fn publish(state: &mut SbSessionState) -> bool {
    state.meta_seq += 1;
    let (key, meta) = (state.peer.to_string(), meta(state));
    state
        .ctx
        .tracker
        .update(state.owner, PEERS_TOPIC, &key, move |_| meta)
        .await
        .is_ok()
}

/// The peer replaces the list of ids it watches (bounded); those online are noticed.
pub(super) fn watch(state: &mut SbSessionState, ids: Vec<FeedId>) -> bool {
    if ids.len() > WATCH_IDS_MAX {
        let reason = format!("at most {WATCH_IDS_MAX} ids may be watched");
        return send(state, ServerMsg::Refused { reason });
    }
    let watch: HashSet<FeedId> = ids.into_iter().collect();
    state.ctx.watchers.replace(state.peer, &state.watch, &watch);
    state.watch = watch;
    // Ids still watched keep what the peer was told of them; for new ones the peer assumes
    // offline, so only those it may see online are news (one hidden from it makes no frame, as
    // one offline).
    let watch = &state.watch;
    state.shown.retain(|id, _| watch.contains(id));
    let ids: Vec<FeedId> = state.watch.iter().copied().collect();
    ids.into_iter().all(|id| notice(state, id))
}

/// Tell the peer what changed in its view of every id it watches (notices may have been
/// missed).
pub(super) fn resync(state: &mut SbSessionState) -> bool {
    let ids: Vec<FeedId> = state.watch.iter().copied().collect();
    ids.into_iter().all(|id| notice(state, id))
}

/// What this session's peer may see of `id` now: its newest presence, if that one shows it to
/// the peer. (The newest decides: an older connection of `id`'s, lingering until its idle
/// timeout, may carry an allow-list `id` has since narrowed.)
pub(super) fn view_of(state: &SbSessionState, id: &FeedId) -> Option<PeerMeta> {
    state
        .ctx
        .tracker
        .get_by_key(PEERS_TOPIC, &id.to_string())
        .into_iter()
        .filter_map(|p| TrackedMeta::decode(&p.row.meta))
        .max_by_key(|m| m.peer.since_ms)
        .filter(|m| m.shown_to(&state.peer, id))
        .filter(|m| {
            let (since, seq, now) = (m.peer.since_ms, m.seq, Instant::now());
            !state
                .ctx
                .watchers
                .is_revoked(*id, state.peer, since, seq, now)
        })
        .map(|m| m.peer)
}

/// Tell the peer the presence of `id` if its view of it changed since it was last told (nothing
/// otherwise: a hidden peer's changes must make no frame). False ends the session.
pub(super) fn notice(state: &mut SbSessionState, id: FeedId) -> bool {
    let online = view_of(state, &id);
    if state.shown.get(&id) == online.as_ref() {
        return true;
    }
    match &online {
        Some(meta) => state.shown.insert(id, meta.clone()),
        None => state.shown.remove(&id),
    };
    Counters::bump(&state.ctx.counters.notices);
    send(state, ServerMsg::Presence { id, online })
}
