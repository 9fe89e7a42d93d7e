//! `kith switchboards` and `kith switchboards forget`: the switchboards this daemon remembers
//! (in its store, with the key pinned on first use and the invite code used) and what each link
//! knows now, and forgetting one.
//!
//! Why: a daemon remembers every switchboard it was given and dials the remembered ones on every
//! start, with or without `--switchboard`; without a way to see and drop them a user cannot
//! leave a switchboard for good.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use crate::daemon::context::PeerContext;
use crate::daemon::error::NodeError;
use crate::daemon::messages::SbLinkMsg;
use crate::daemon::node::Node;
use crate::daemon::switchboard_link::child_id;
use crate::daemon::uplink::LinkView;
use crate::daemon::writer::submit;
use crate::ingest::Op;
use crate::net::target::Cluster;

/// One switchboard as `kith switchboards` shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SwitchboardView {
    /// `HOST:PORT` (a cluster's members', comma-separated).
    host: String,
    /// The pinned key, if known (a cluster's first).
    id: Option<String>,
    /// A cluster's keys, members' and bare (empty for a single switchboard).
    keys: Vec<String>,
    /// The invite code used (or to be used), if any.
    invite: Option<String>,
    /// Remembered in the store (dialled on every start).
    remembered: bool,
    /// What the link knows now (absent if no link runs for it).
    link: Option<LinkView>,
}

/// The remembered switchboards and the running links, by host.
pub(crate) fn list(
    node: &Node,
    peers: Option<&PeerContext>,
) -> Result<serde_json::Value, NodeError> {
    let mut out: BTreeMap<String, SwitchboardView> = BTreeMap::new();
    for (host, text) in node.store.read()?.switchboards()? {
        let target = Cluster::parse(&text).ok();
        out.insert(
            host.clone(),
            SwitchboardView {
                host,
                id: target
                    .as_ref()
                    .and_then(|t| t.known_keys().first().copied())
                    .map(|id| id.to_string()),
                keys: cluster_keys(target.as_ref()),
                invite: target.and_then(|t| t.invite),
                remembered: true,
                link: None,
            },
        );
    }
    for view in peers.map(|p| p.relays.views()).unwrap_or_default() {
        let Ok(target) = Cluster::parse(&view.target) else {
            continue;
        };
        let entry = out.entry(target.key()).or_insert_with(|| SwitchboardView {
            host: target.key(),
            id: None,
            keys: cluster_keys(Some(&target)),
            invite: target.invite.clone(),
            remembered: false,
            link: None,
        });
        entry.id = entry.id.take().or(view.id.clone());
        entry.link = Some(view);
    }
    let list: Vec<SwitchboardView> = out.into_values().collect();
    Ok(json!({ "switchboards": list }))
}

/// A cluster's keys as text; none for a single switchboard (its key is `id`).
fn cluster_keys(target: Option<&Cluster>) -> Vec<String> {
    match target {
        Some(t) if t.members.len() > 1 || !t.keys.is_empty() => {
            t.known_keys().iter().map(|k| k.to_string()).collect()
        }
        _ => Vec::new(),
    }
}

/// Forget the switchboards `which` names (`HOST:PORT`, a cluster's `HOST:PORT,…`, or `@ID` for
/// a pinned key): removed from the store and their links closed for good.
pub(crate) async fn forget(
    node: &Node,
    peers: Option<&PeerContext>,
    which: &str,
) -> Result<serde_json::Value, NodeError> {
    let id = which.parse::<crate::identity::FeedId>().ok();
    let matches = |target: &Cluster| match id {
        Some(id) => target.known_keys().contains(&id),
        None => target.key() == which || target.members.iter().any(|m| m.host == which),
    };
    let mut hosts: Vec<String> = node
        .store
        .read()?
        .switchboards()?
        .into_iter()
        .filter(|(_, text)| Cluster::parse(text).is_ok_and(|t| matches(&t)))
        .map(|(host, _)| host)
        .collect();
    let mut links = Vec::new();
    for view in peers.map(|p| p.relays.views()).unwrap_or_default() {
        let Ok(mut target) = Cluster::parse(&view.target) else {
            continue;
        };
        // The key the link proved counts too (learned on first use, or a cluster member's).
        if let Some(key) = view.id.as_deref().and_then(|t| t.parse().ok()) {
            if !target.known_keys().contains(&key) {
                target.keys.push(key);
            }
        }
        if matches(&target) {
            if !hosts.contains(&target.key()) {
                hosts.push(target.key());
            }
            links.push((view.target, child_id(&target)));
        }
    }
    if hosts.is_empty() {
        return Err(NodeError::NotFound(format!(
            "no switchboard {which} is remembered or linked (see `kith switchboards`)"
        )));
    }
    let ops = hosts.iter().cloned().map(Op::ForgetSwitchboard).collect();
    for outcome in submit(&node.writer, ops).await? {
        outcome?;
    }
    if let Some(peers) = peers {
        for (target, child) in &links {
            // Stopped and removed from the supervisor (not restarted); a link the supervisor
            // does not hold is told to stop dialling.
            if peers.links.terminate_child(child).await.is_err() {
                if let Some(link) = peers.relays.link(target) {
                    let _ = link.cast(SbLinkMsg::Forget);
                }
            }
            peers.relays.forget(target);
        }
    }
    Ok(json!({ "forgotten": hosts }))
}
