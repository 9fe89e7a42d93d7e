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
use crate::daemon::uplink::LinkView;
use crate::daemon::writer::submit;
use crate::ingest::Op;
use crate::net::target::Target;

/// One switchboard as `kith switchboards` shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SwitchboardView {
    /// `HOST:PORT`.
    host: String,
    /// The pinned key, if known.
    id: Option<String>,
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
        let target = Target::parse(&text).ok();
        out.insert(
            host.clone(),
            SwitchboardView {
                host,
                id: target.as_ref().and_then(|t| t.id).map(|id| id.to_string()),
                invite: target.and_then(|t| t.invite),
                remembered: true,
                link: None,
            },
        );
    }
    for view in peers.map(|p| p.relays.views()).unwrap_or_default() {
        let Ok(target) = Target::parse(&view.target) else {
            continue;
        };
        let entry = out
            .entry(target.host.clone())
            .or_insert_with(|| SwitchboardView {
                host: target.host.clone(),
                id: None,
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

/// Forget the switchboards `which` names (`HOST:PORT`, or `@ID` for its pinned key): removed
/// from the store and their links closed for good.
pub(crate) async fn forget(
    node: &Node,
    peers: Option<&PeerContext>,
    which: &str,
) -> Result<serde_json::Value, NodeError> {
    let id = which.parse::<crate::identity::FeedId>().ok();
    let matches = |target: &Target| match id {
        Some(id) => target.id == Some(id),
        None => target.host == which,
    };
    let mut hosts: Vec<String> = node
        .store
        .read()?
        .switchboards()?
        .into_iter()
        .filter(|(_, text)| Target::parse(text).is_ok_and(|t| matches(&t)))
        .map(|(host, _)| host)
        .collect();
    let mut links = Vec::new();
    for view in peers.map(|p| p.relays.views()).unwrap_or_default() {
        let Ok(mut target) = Target::parse(&view.target) else {
            continue;
        };
        target.id = target
            .id
            .or(view.id.as_deref().and_then(|t| t.parse().ok()));
        if matches(&target) {
            if !hosts.contains(&target.host) {
                hosts.push(target.host.clone());
            }
            links.push(view.target);
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
        for target in &links {
            if let Some(link) = peers.relays.link(target) {
                let _ = link.cast(SbLinkMsg::Forget);
            }
            peers.relays.forget(target);
        }
    }
    Ok(json!({ "forgotten": hosts }))
}
