//! A switchboard's answers on its control socket: `kith status` (the tree, the counters, how
//! many are online — a count, no names) and the operator's membership commands (invite codes:
//! make, list, revoke; members: list, remove).
//!
//! Why here and not in the tree: these are the switchboard's own decisions about its state; the
//! supervision tree only hands them a way to report itself ([`TreeReporter`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::feed::now_ms;
use crate::identity::FeedId;
use crate::limits::INVITE_TTL_DEFAULT;
use crate::runtime::control_socket::Handler;
use crate::runtime::control_socket::TreeReporter;
use crate::switchboard::context::SbContext;
use crate::switchboard::invites::InviteFile;
use crate::switchboard::messages::SbSessionMsg;
use crate::wire::control::{Request, Response};
use crate::wire::switchboard::PEERS_TOPIC;

/// What a command about membership says on an open switchboard.
const OPEN: &str =
    "this switchboard has open membership; restart it with --invite-only to use invite codes";

/// The switchboard's control handler; `tree` reports the live supervision tree.
pub fn handler(ctx: SbContext, tree: TreeReporter, cpus_polled_when_idle: bool) -> Handler {
    Arc::new(move |request| {
        let (ctx, tree) = (ctx.clone(), tree.clone());
        Box::pin(async move {
            match request {
                Request::Status => Response::ok(status(&ctx, tree().await, cpus_polled_when_idle)),
                Request::InviteCreate { hours } => with_invites(&ctx, |file| invite(file, hours)),
                Request::InviteList => with_invites(&ctx, list_invites),
                Request::InviteRevoke { code } => with_invites(&ctx, |file| revoke(file, &code)),
                Request::Members => with_invites(&ctx, members),
                Request::MemberRemove { id } => remove_member(&ctx, &id),
                _ => Response::err("this is a switchboard: it keeps no feeds; run that command against a daemon's data directory"),
            }
        })
    })
}

fn status(ctx: &SbContext, tree: Value, cpus_polled_when_idle: bool) -> Value {
    let members = ctx.members.list();
    json!({
        "id": ctx.node,
        "role": "switchboard",
        "listen": ctx.endpoint.local_addr().ok().map(|a| a.to_string()),
        "online": ctx.tracker.list(PEERS_TOPIC).len(),
        "invite_only": ctx.invites.is_some(),
        "cpus_polled_when_idle": cpus_polled_when_idle,
        "cluster": ctx.cluster_nodes(),
        "cluster_keys": members.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "counters": counters(ctx),
        "relay": relay_view(ctx),
        "supervision": tree,
    })
}

/// The switchboard's counters, with its listener's handshake admission counts (Retries asked,
/// refusals per address and when full, handshakes cut at their deadline).
fn counters(ctx: &SbContext) -> Value {
    let mut counters = json!(ctx.counters.view());
    if let Value::Object(map) = &mut counters {
        map.insert("handshakes".into(), json!(ctx.endpoint.handshakes()));
    }
    counters
}

fn relay_view(ctx: &SbContext) -> Value {
    let (stats, rate) = (ctx.hub.stats(), ctx.hub.config().rate);
    json!({
        "client_packets_per_sec": rate.packets_per_sec as u64,
        "client_bytes_per_sec": rate.bytes_per_sec as u64,
        "forwarded_packets": stats.forwarded_packets,
        "forwarded_bytes": stats.forwarded_bytes,
        "refused_packets": stats.refused_total(),
        "refused_queue_full": stats.refused(crate::relay::Refusal::QueueFull),
        "refused_rate_limited": stats.refused(crate::relay::Refusal::RateLimited),
        "lost_closed": ctx.hub.lost(),
        "pairs_expired": stats.expired_pairs,
    })
}

/// Run `f` on the invites file of an invite-only switchboard.
fn with_invites(ctx: &SbContext, f: impl FnOnce(&mut InviteFile) -> Response) -> Response {
    let Some(invites) = &ctx.invites else {
        return Response::err(OPEN);
    };
    let mut file = invites.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut file)
}

fn invite(file: &mut InviteFile, hours: Option<u64>) -> Response {
    let ttl = hours.map_or(INVITE_TTL_DEFAULT, |h| {
        Duration::from_secs(h.saturating_mul(3600))
    });
    let now = now_ms();
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let made = file
        .invites
        .create(now, ttl_ms)
        .and_then(|code| file.save().map(|()| code));
    match made {
        Ok(code) => Response::ok(json!({ "code": code, "expires_ms": now.saturating_add(ttl_ms) })),
        Err(e) => Response::err(e),
    }
}

fn list_invites(file: &mut InviteFile) -> Response {
    let codes: Vec<Value> = file
        .invites
        .codes(now_ms())
        .into_iter()
        .map(|(code, expires_ms)| json!({ "code": code, "expires_ms": expires_ms }))
        .collect();
    Response::ok(json!({ "invites": codes }))
}

fn revoke(file: &mut InviteFile, code: &str) -> Response {
    if !file.invites.revoke(code) {
        return Response::err("no such invite code is outstanding (it was used, expired or revoked); `kith switchboard invite --list` shows those that are");
    }
    match file.save() {
        Ok(()) => Response::ok(json!({ "revoked": code })),
        Err(e) => Response::err(e),
    }
}

fn members(file: &mut InviteFile) -> Response {
    let members: Vec<Value> = file
        .invites
        .members()
        .iter()
        .map(|(id, m)| json!({ "id": id, "since_ms": m.since_ms, "code": m.code }))
        .collect();
    Response::ok(json!({ "members": members }))
}

/// Forget member `id` and close its session, if it has one here.
fn remove_member(ctx: &SbContext, id: &str) -> Response {
    let Ok(peer) = id.parse::<FeedId>() else {
        return Response::err(format!("`{id}` is not an id (@….ed25519)"));
    };
    let removed = with_invites(ctx, |file| {
        if !file.invites.remove(&peer) {
            return Response::err(format!("{peer} is not a member of this switchboard"));
        }
        match file.save() {
            Ok(()) => Response::ok(json!({ "removed": peer.to_string() })),
            Err(e) => Response::err(e),
        }
    });
    if removed.ok {
        if let Some(session) = ctx.sessions.get(&peer) {
            let _ = session.cast(SbSessionMsg::Closed("removed by the operator".into()));
        }
    }
    removed
}
