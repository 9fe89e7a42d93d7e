//! Map a control request onto the node and shape the answer.

use std::sync::Arc;

use serde_json::json;

use crate::daemon::connect::connect;
use crate::daemon::context::PeerContext;
use crate::daemon::control::private;
use crate::daemon::control::social;
use crate::daemon::control::switchboards;
use crate::daemon::control::view::ContactView;
use crate::daemon::error::NodeError;
use crate::daemon::node::Node;
use crate::identity::FeedId;
use crate::limits::{QUERY_LIMIT_DEFAULT, QUERY_LIMIT_MAX};
use crate::rolodex::RolodexChange;
use crate::runtime::control_socket::{Handler, TreeReporter};
use crate::wire::control::{Request, Response};

/// The handler of a daemon: requests dispatched onto its node.
pub fn node_handler(node: Node, tree: TreeReporter, peers: Option<PeerContext>) -> Handler {
    Arc::new(move |request| {
        let (node, tree, peers) = (node.clone(), Arc::clone(&tree), peers.clone());
        Box::pin(async move { dispatch(&node, &tree, peers.as_ref(), request).await })
    })
}

/// Answer one request. `peers` is the network context, absent on a node without one.
pub async fn dispatch(
    node: &Node,
    tree: &TreeReporter,
    peers: Option<&PeerContext>,
    request: Request,
) -> Response {
    match answer(node, tree, peers, request).await {
        Ok(data) => Response::ok(data),
        Err(e) => Response::err(e),
    }
}

async fn answer(
    node: &Node,
    tree: &TreeReporter,
    peers: Option<&PeerContext>,
    request: Request,
) -> Result<serde_json::Value, NodeError> {
    match request {
        Request::Whoami => Ok(json!({ "id": node.identity.id().to_string() })),
        Request::Post { text, reply_to } => social::post(node, text, reply_to).await,
        Request::PostAttached {
            text,
            reply_to,
            attach,
        } => social::post_attached(node, text, reply_to, attach).await,
        Request::BlobAdd { path } => crate::daemon::blob::control::add(node, path).await,
        Request::BlobGet { id } => crate::daemon::blob::control::get(node, id).await,
        Request::BlobLs => crate::daemon::blob::control::list(node).await,
        Request::Feed { id, limit, before } => {
            let id = match id {
                Some(text) => parse_id(&text)?,
                None => node.identity.id(),
            };
            let limit = checked(limit)?;
            let before = match cursor(node, before.as_deref())? {
                Some(b) if b.author != id => {
                    return Err(NodeError::NotFound(format!(
                        "--before names a message of another feed than {id}"
                    )))
                }
                b => b.map(|b| b.seq),
            };
            let list = node.store.read()?.feed_before(&id, before, limit)?;
            page(node, list, limit)
        }
        Request::Timeline { limit, before } => {
            let limit = checked(limit)?;
            let before = cursor(node, before.as_deref())?;
            let me = node.identity.id();
            let list = node.store.read()?.timeline_before(before.as_ref(), limit, |a| {
                *a == me || node.rolodex.is_following(a)
            })?;
            page(node, list, limit)
        }
        Request::Follow { id, addr } => change(node, &id, RolodexChange::Follow { addr }).await,
        Request::Unfollow { id } => change(node, &id, RolodexChange::Unfollow).await,
        Request::Block { id } => change(node, &id, RolodexChange::Block).await,
        Request::Unblock { id } => change(node, &id, RolodexChange::Unblock).await,
        Request::Contacts => {
            let contacts: Vec<ContactView> = node
                .rolodex
                .list()
                .iter()
                .map(|e| {
                    let reach = peers.map(|p| (p.connections.via(&e.id), p.relays.outcome(&e.id)));
                    let (via, outcome) = reach.unwrap_or_default();
                    ContactView::from(e)
                        .with_presence(node.online.seen(&e.id))
                        .with_reach(via, outcome)
                })
                .collect();
            Ok(json!({ "contacts": social::name_contacts(node, peers, contacts)? }))
        }
        Request::PresenceSet { text } => {
            node.set_status(text.clone())?;
            Ok(json!({ "status": text }))
        }
        Request::Status => status(node, tree, peers).await,
        Request::InviteCreate { .. }
        | Request::InviteList
        | Request::InviteRevoke { .. }
        | Request::Members
        | Request::MemberRemove { .. } => Err(NodeError::NotFound(
            "this is a daemon; run `kith switchboard invite|members|remove` against a switchboard's data directory".into(),
        )),
        Request::Switchboards => switchboards::list(node, peers),
        Request::SwitchboardForget { target } => switchboards::forget(node, peers, &target).await,
        Request::Connect { target } => {
            let peers = peers.ok_or(NodeError::Unavailable("the network"))?;
            let peer = connect(peers, &target).await?;
            let (connection, introduction) = reach(peers, &peer);
            Ok(json!({
                "peer": peer.to_string(),
                "connection": connection,
                "introduction": introduction,
            }))
        }
        Request::ProfileSet { name, description } => {
            social::profile_set(node, name, description).await
        }
        Request::Profile { id } => social::profile(node, id),
        Request::Petname { id, petname } => social::petname(node, &id, petname).await,
        Request::Thread { id } => social::thread(node, &id),
        Request::Mentions { limit, before } => {
            let limit = checked(limit)?;
            let before = cursor(node, before.as_deref())?;
            let list = node
                .store
                .read()?
                .mentions_before(&node.identity.id(), before.as_ref(), limit)?;
            // A blocked author's posts are left out; the page still continues below them.
            let next = next_before(&list, limit);
            let list: Vec<_> = list
                .into_iter()
                .filter(|e| !node.rolodex.is_blocked(&e.header.author))
                .collect();
            Ok(json!({ "entries": social::entry_views(node, &list)?, "next_before": next }))
        }
        Request::React { id, text } => social::react(node, &id, text).await,
        Request::Card { addrs } => social::card(node, peers, addrs),
        Request::FollowCard { card } => social::follow_card(node, peers, &card).await,
        Request::Dm { to, text } => private::dm(node, to, text).await,
        Request::Inbox { limit } => private::inbox(node, checked(limit)?),
        Request::DmThread { id, limit } => private::thread(node, &id, checked(limit)?),
        Request::Delete { id } => private::delete(node, &id).await,
    }
}

/// How this node reaches `peer`: the live connection's path (`direct` or `relayed`) and how the
/// last introduction to it ended.
fn reach(
    peers: &PeerContext,
    peer: &FeedId,
) -> (Option<&'static str>, Option<crate::daemon::uplink::Outcome>) {
    let connection = peers
        .connections
        .via(peer)
        .map(|v| if v.relayed { "relayed" } else { "direct" });
    (connection, peers.relays.outcome(peer))
}

/// The number of entries a query returns: the default, or the limit asked for if it is in
/// 1..=[`QUERY_LIMIT_MAX`]. A limit outside is refused by name (never silently changed: 0 used to
/// return one entry, and 50,000 silently returned 10,000).
fn checked(limit: Option<usize>) -> Result<usize, NodeError> {
    match limit {
        None => Ok(QUERY_LIMIT_DEFAULT),
        Some(got @ 1..=QUERY_LIMIT_MAX) => Ok(got),
        Some(got) => Err(NodeError::BadLimit {
            got,
            max: QUERY_LIMIT_MAX,
        }),
    }
}

fn parse_id(text: &str) -> Result<FeedId, NodeError> {
    text.parse()
        .map_err(|e: crate::identity::IdentityError| NodeError::NotFound(e.to_string()))
}

/// The cursor `--before MSGID` names: the message must be held here.
fn cursor(node: &Node, before: Option<&str>) -> Result<Option<crate::store::Before>, NodeError> {
    let Some(text) = before else {
        return Ok(None);
    };
    let id: crate::feed::MsgId = text
        .parse()
        .map_err(|_| NodeError::NotFound(format!("--before {text} is not a message id (%….b3)")))?;
    match node.store.read()?.before_of(&id)? {
        Some(b) => Ok(Some(b)),
        None => Err(NodeError::NotFound(format!(
            "--before {id} is not held here; give a message id a listing printed"
        ))),
    }
}

/// A page of a newest-first listing: its entries and, when it is full (there may be more),
/// `next_before`: the id to give `--before` for the next page.
fn page(
    node: &Node,
    list: Vec<crate::store::StoredEntry>,
    limit: usize,
) -> Result<serde_json::Value, NodeError> {
    let next = next_before(&list, limit);
    Ok(json!({ "entries": social::entry_views(node, &list)?, "next_before": next }))
}

/// The id to give `--before` for the page after `list`, if it is full (there may be more).
fn next_before(list: &[crate::store::StoredEntry], limit: usize) -> Option<String> {
    match list.last() {
        Some(last) if list.len() >= limit => Some(last.id.to_string()),
        _ => None,
    }
}

async fn change(
    node: &Node,
    id: &str,
    change: RolodexChange,
) -> Result<serde_json::Value, NodeError> {
    let entry = node.change(parse_id(id)?, change).await?;
    Ok(json!({ "contact": ContactView::from(&entry) }))
}

async fn status(
    node: &Node,
    tree: &TreeReporter,
    peers: Option<&PeerContext>,
) -> Result<serde_json::Value, NodeError> {
    let me = node.identity.id();
    let heads = node.store.read()?.heads()?;
    let feeds: Vec<_> = heads
        .iter()
        .map(|(id, head)| {
            json!({
                "id": id.to_string(),
                "seq": head.seq,
                "own": *id == me,
                "following": node.rolodex.is_following(id),
                "updated_ms": head.timestamp_ms,
            })
        })
        .collect();
    let switchboards = peers.map(|p| p.relays.views()).unwrap_or_default();
    // Per followed id: online or not, connected directly or relayed, how the last introduction
    // ended (refused: they do not follow you).
    let follows: Vec<_> = node
        .rolodex
        .following()
        .into_iter()
        .map(|id| {
            let (connection, introduction) = peers.map(|p| reach(p, &id)).unwrap_or_default();
            json!({
                "id": id.to_string(),
                "online": node.online.get(&id).is_some(),
                "connection": connection,
                "introduction": introduction,
            })
        })
        .collect();
    let (listen, connections, replication) = match peers {
        Some(p) => {
            let progress: Vec<_> = p
                .replicators
                .progress()
                .into_iter()
                .map(|(feed, mut progress)| {
                    // The store is the truth for how far a feed is held (own posts bypass replicators).
                    progress.seq = heads
                        .iter()
                        .find(|(f, _)| *f == feed)
                        .map_or(0, |(_, h)| h.seq);
                    json!({ "feed": feed.to_string(), "progress": progress })
                })
                .collect();
            (
                p.endpoint.local_addr().ok().map(|a| a.to_string()),
                p.connections.views(),
                progress,
            )
        }
        None => (None, Vec::new(), Vec::new()),
    };
    Ok(json!({
        "id": me.to_string(),
        "listen": listen,
        "supervision": tree().await,
        "feeds": feeds,
        "connections": connections,
        "switchboards": switchboards,
        "follows": follows,
        "replication": replication,
        // The listener's handshake admission counts (Retries asked, refusals, deadlines hit).
        "handshakes": peers.map(|p| p.endpoint.handshakes()),
        "rolodex": { "entries": node.rolodex.len(), "following": node.rolodex.following().len() },
        // The policies in effect (read at start: flags, then config.toml, then defaults).
        "policy": {
            "serve": peers.map(|p| format!("{:?}", p.serve).to_lowercase()),
            "introductions": peers.map(|p| format!("{:?}", p.introductions).to_lowercase()),
            "presence_visible_to": format!("{:?}", node.online.visibility()).to_lowercase(),
        },
    }))
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn a_limit_is_the_default_or_in_range_and_anything_else_is_refused_by_name() {
        assert_eq!(checked(None).unwrap(), QUERY_LIMIT_DEFAULT);
        assert_eq!(checked(Some(1)).unwrap(), 1);
        assert_eq!(checked(Some(QUERY_LIMIT_MAX)).unwrap(), QUERY_LIMIT_MAX);
        for got in [0, QUERY_LIMIT_MAX + 1, usize::MAX] {
            let e = checked(Some(got)).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("--limit {got} is out of range: give 1 to {QUERY_LIMIT_MAX}")
            );
        }
    }
}
