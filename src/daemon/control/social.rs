//! The social answers of the control socket: names on every entry and contact, profiles,
//! petnames, threads, mentions, reactions, and the contact card.
//!
//! Names come from two places: the petnames in the rolodex (this user's own, never published)
//! and the profiles the store indexes from each feed's self-published about entries. The pure
//! [`crate::feed::names::label_all`] decides what is shown, so that a published name can never
//! pass for a petname or for another contact.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::daemon::context::PeerContext;
use crate::daemon::control::view::{ContactView, EntryView, ReactionCount};
use crate::daemon::error::NodeError;
use crate::daemon::node::Node;
use crate::feed::mentions::{resolve, tokens};
use crate::feed::names::{check_name, clean, label_all, Known, Label};
use crate::feed::{check_reaction, Content, FeedError, MsgId};
use crate::identity::FeedId;
use crate::ingest::Op;
use crate::limits::{CARD_ADDRS_MAX, CARD_SWITCHBOARDS_MAX, DESCRIPTION_BYTES_MAX};
use crate::rolodex::RolodexChange;
use crate::store::{Reader, StoredEntry};
use crate::wire::card::Card;

/// Words of a parent post shown beside a reply.
const EXCERPT_CHARS: usize = 60;

/// Labels for the feeds this node knows (own, followed, petnamed) and for `extra` ids.
pub(crate) struct Namer {
    labels: BTreeMap<FeedId, Label>,
}

impl Namer {
    /// Gather what is known of the own feed, the followed and petnamed contacts, and `extra`.
    pub(crate) fn new(
        node: &Node,
        reader: &Reader<'_>,
        extra: impl IntoIterator<Item = FeedId>,
    ) -> Result<Namer, NodeError> {
        let mut ids: BTreeSet<FeedId> = extra.into_iter().collect();
        ids.insert(node.identity.id());
        let mut known: BTreeMap<FeedId, Known> = BTreeMap::new();
        for entry in node.rolodex.list() {
            if entry.following || entry.petname.is_some() || ids.contains(&entry.id) {
                ids.remove(&entry.id);
                let name = reader.profile(&entry.id)?.and_then(|p| p.name);
                known.insert(
                    entry.id,
                    Known {
                        petname: entry.petname.clone(),
                        name,
                    },
                );
            }
        }
        for id in ids {
            let name = reader.profile(&id)?.and_then(|p| p.name);
            known.insert(
                id,
                Known {
                    petname: None,
                    name,
                },
            );
        }
        Ok(Namer {
            labels: label_all(&known),
        })
    }

    /// How `id` is shown.
    pub(crate) fn label(&self, id: &FeedId) -> String {
        self.labels
            .get(id)
            .map_or_else(|| id.short(), |l| l.text.clone())
    }
}

fn excerpt(text: &str) -> String {
    let flat = clean(text);
    if flat.chars().count() <= EXCERPT_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(EXCERPT_CHARS).collect();
    format!("{}…", cut.trim_end())
}

fn parse_msg(text: &str) -> Result<MsgId, NodeError> {
    Ok(text.parse::<MsgId>()?)
}

fn parse_feed(text: &str) -> Result<FeedId, NodeError> {
    text.parse()
        .map_err(|e: crate::identity::IdentityError| NodeError::NotFound(e.to_string()))
}

/// Entries as shown: author names, what a reply answers, reaction counts.
pub(crate) fn entry_views(node: &Node, list: &[StoredEntry]) -> Result<Vec<EntryView>, NodeError> {
    let reader = node.store.read()?;
    let parents: Vec<Option<StoredEntry>> = list
        .iter()
        .map(|e| match e.content.as_ref().and_then(Content::refers_to) {
            Some(parent) => reader.message(&parent),
            None => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let authors = list
        .iter()
        .map(|e| e.header.author)
        .chain(parents.iter().flatten().map(|p| p.header.author));
    let namer = Namer::new(node, &reader, authors)?;
    let blocked = |id: &FeedId| node.rolodex.is_blocked(id);
    let mut out = Vec::with_capacity(list.len());
    for (entry, parent) in list.iter().zip(parents) {
        let mut view = EntryView::from(entry);
        view.author_name = namer.label(&entry.header.author);
        if let Some(parent) = parent {
            view.reply_to_author = Some(namer.label(&parent.header.author));
            view.reply_to_excerpt = parent
                .content
                .as_ref()
                .and_then(Content::post_text)
                .map(excerpt);
        }
        view.reactions = reader
            .reactions(&entry.id, blocked)?
            .into_iter()
            .map(|(text, count)| ReactionCount { text, count })
            .collect();
        out.push(view);
    }
    Ok(out)
}

/// `kith post`: resolve the mentions typed against the names known, then publish.
pub(crate) async fn post(
    node: &Node,
    text: String,
    reply_to: Option<String>,
) -> Result<Value, NodeError> {
    post_attached(node, text, reply_to, Vec::new()).await
}

/// [`post`] with the files at `attach` stored as blobs and attached (`kith post --attach`).
pub(crate) async fn post_attached(
    node: &Node,
    text: String,
    reply_to: Option<String>,
    attach: Vec<String>,
) -> Result<Value, NodeError> {
    let reply_to = reply_to.map(|r| parse_msg(&r)).transpose()?;
    let typed = tokens(&text);
    let mentions = if typed.is_empty() {
        Vec::new()
    } else {
        let reader = node.store.read()?;
        let me = node.identity.id();
        let mut known: Vec<(FeedId, Vec<String>)> = Vec::new();
        let own = reader.profile(&me)?.and_then(|p| p.name);
        known.push((me, own.into_iter().collect()));
        for entry in node.rolodex.list() {
            if entry.blocked {
                continue;
            }
            let mut names: Vec<String> = entry.petname.clone().into_iter().collect();
            names.extend(reader.profile(&entry.id)?.and_then(|p| p.name));
            if !names.is_empty() {
                known.push((entry.id, names));
            }
        }
        resolve(&typed, &known)?
    };
    let mentioned: Vec<String> = mentions.iter().map(ToString::to_string).collect();
    // Checked before the files are stored, so a refused post leaves no blob behind.
    if !attach.is_empty() {
        let probe = crate::blob::BlobRef {
            id: crate::blob::BlobId([0; 32]),
            size: 0,
            name: None,
        };
        Content::Attached {
            text: text.clone(),
            root: reply_to,
            branch: reply_to,
            mentions: mentions.clone(),
            blobs: vec![probe; attach.len()],
        }
        .validate()?;
    }
    let blobs = crate::daemon::blob::control::add_files(node, attach).await?;
    let attached: Vec<Value> = blobs
        .iter()
        .map(|b| json!({ "id": b.id.to_string(), "size": b.size, "name": b.name }))
        .collect();
    let (id, seq) = node.post_attached(text, reply_to, mentions, blobs).await?;
    Ok(json!({ "id": id.to_string(), "seq": seq, "mentions": mentioned, "attachments": attached }))
}

/// `kith profile set`.
pub(crate) async fn profile_set(
    node: &Node,
    name: Option<String>,
    description: Option<String>,
) -> Result<Value, NodeError> {
    if name.is_none() && description.is_none() {
        return Err(NodeError::NotFound(
            "give --name NAME and/or --description TEXT".into(),
        ));
    }
    if let Some(name) = &name {
        check_name(name)?;
    }
    if let Some(d) = &description {
        if d.len() > DESCRIPTION_BYTES_MAX {
            return Err(FeedError::ContentInvalid(format!(
                "description is {} bytes; the most allowed is {DESCRIPTION_BYTES_MAX}",
                d.len()
            ))
            .into());
        }
    }
    let me = node.identity.id();
    let (id, seq) = node
        .publish(Content::About {
            id: me,
            name,
            description,
        })
        .await?;
    let mut out = profile(node, None)?;
    out["published"] = json!({ "id": id.to_string(), "seq": seq });
    Ok(out)
}

/// `kith profile [ID]`.
pub(crate) fn profile(node: &Node, id: Option<String>) -> Result<Value, NodeError> {
    let me = node.identity.id();
    let id = match id {
        Some(text) => parse_feed(&text)?,
        None => me,
    };
    let reader = node.store.read()?;
    let namer = Namer::new(node, &reader, [id])?;
    let profile = reader.profile(&id)?.unwrap_or_default();
    let summary = reader.feed_summary(&id)?;
    let contact = node.rolodex.get(&id);
    let follows_you = id != me && summary.follows.contains(&me);
    Ok(json!({
        "id": id.to_string(),
        "label": namer.label(&id),
        "name": profile.name.as_deref().map(clean),
        "description": profile.description,
        "petname": contact.as_ref().and_then(|c| c.petname.clone()),
        "own": id == me,
        "entries": summary.entries,
        "posts": summary.posts,
        "follows": summary.follows.len(),
        "counts_partial": summary.partial,
        "following": id != me && node.rolodex.is_following(&id),
        "follows_you": follows_you,
        "blocked": node.rolodex.is_blocked(&id),
        "last_seen_ms": contact.as_ref().and_then(|c| c.last_seen_ms),
    }))
}

/// `kith contacts name ID [PETNAME]`.
pub(crate) async fn petname(
    node: &Node,
    id: &str,
    petname: Option<String>,
) -> Result<Value, NodeError> {
    if let Some(name) = &petname {
        check_name(name)?;
    }
    let id = parse_feed(id)?;
    let entry = node.change(id, RolodexChange::Petname(petname)).await?;
    let mut view = ContactView::from(&entry);
    view.label = Namer::new(node, &node.store.read()?, [id])?.label(&id);
    Ok(json!({ "contact": view }))
}

/// `kith contacts`: the views given, with names, labels, and last seen (now, if connected).
pub(crate) fn name_contacts(
    node: &Node,
    peers: Option<&PeerContext>,
    mut views: Vec<ContactView>,
) -> Result<Vec<ContactView>, NodeError> {
    let reader = node.store.read()?;
    let ids: Vec<FeedId> = views.iter().filter_map(|v| v.id.parse().ok()).collect();
    let namer = Namer::new(node, &reader, ids.iter().copied())?;
    let now = crate::feed::now_ms();
    for view in views.iter_mut() {
        let Ok(id) = view.id.parse::<FeedId>() else {
            continue;
        };
        let id = &id;
        view.name = reader.profile(id)?.and_then(|p| p.name).map(|n| clean(&n));
        view.label = namer.label(id);
        if peers.is_some_and(|p| p.connections.contains(id)) {
            view.last_seen_ms = Some(now);
        }
    }
    Ok(views)
}

/// One reply placed in its thread.
#[derive(serde::Serialize)]
struct ReplyView {
    #[serde(flatten)]
    entry: EntryView,
    depth: usize,
    /// The message it answers is not held here (a feed this node does not replicate).
    parent_missing: bool,
}

/// `kith thread MSG`: the root, then the replies depth first, each after the one it answers
/// (siblings oldest first); replies whose parent is missing come under the root, marked.
pub(crate) fn thread(node: &Node, id: &str) -> Result<Value, NodeError> {
    let id = parse_msg(id)?;
    let reader = node.store.read()?;
    if reader.locate(&id)?.is_none() {
        return Err(NodeError::NotFound(format!("{id} is not held here")));
    }
    let thread = reader.thread(&id)?;
    drop(reader);
    let held: BTreeSet<MsgId> = thread
        .replies
        .iter()
        .map(|(e, _)| e.id)
        .chain(thread.root.as_ref().map(|r| r.id))
        .collect();
    let mut children: BTreeMap<MsgId, Vec<usize>> = BTreeMap::new();
    let mut orphans = Vec::new();
    let mut missing: BTreeSet<MsgId> = BTreeSet::new();
    for (i, (_, branch)) in thread.replies.iter().enumerate() {
        if *branch == thread.root_id || held.contains(branch) {
            children.entry(*branch).or_default().push(i);
        } else {
            missing.insert(*branch);
            orphans.push(i);
        }
    }
    // Depth first from the root, then the orphans; each reply placed once.
    let mut order: Vec<(usize, usize, bool)> = Vec::with_capacity(thread.replies.len());
    let mut placed = vec![false; thread.replies.len()];
    let mut stack: Vec<(usize, usize, bool)> = Vec::new();
    let push_children = |stack: &mut Vec<(usize, usize, bool)>, of: &MsgId, depth: usize| {
        if let Some(list) = children.get(of) {
            for &i in list.iter().rev() {
                stack.push((i, depth, false));
            }
        }
    };
    push_children(&mut stack, &thread.root_id, 1);
    for &i in orphans.iter().rev() {
        stack.insert(0, (i, 1, true));
    }
    stack.reverse();
    stack.reverse();
    while let Some((i, depth, orphan)) = stack.pop() {
        if std::mem::replace(&mut placed[i], true) {
            continue;
        }
        order.push((i, depth, orphan));
        push_children(&mut stack, &thread.replies[i].0.id, depth + 1);
    }
    let entries: Vec<StoredEntry> = thread
        .root
        .iter()
        .cloned()
        .chain(order.iter().map(|(i, _, _)| thread.replies[*i].0.clone()))
        .collect();
    let mut views = entry_views(node, &entries)?.into_iter();
    let root = match thread.root {
        Some(_) => views.next(),
        None => None,
    };
    let replies: Vec<ReplyView> = views
        .zip(&order)
        .map(|(entry, (_, depth, orphan))| ReplyView {
            entry,
            depth: *depth,
            parent_missing: *orphan,
        })
        .collect();
    Ok(json!({
        "root_id": thread.root_id.to_string(),
        "root": root,
        "replies": replies,
        "missing": missing.len() + usize::from(thread.root.is_none()),
        "truncated": thread.truncated,
    }))
}

/// `kith react MSG TEXT`.
pub(crate) async fn react(node: &Node, id: &str, text: String) -> Result<Value, NodeError> {
    let msg = parse_msg(id)?;
    check_reaction(&text)?;
    if node.store.read()?.locate(&msg)?.is_none() {
        return Err(NodeError::NotFound(format!(
            "{msg} is not held here; react to a message shown by `kith timeline` or `kith thread`"
        )));
    }
    let (id, seq) = node
        .publish(Content::React {
            msg,
            text: text.clone(),
        })
        .await?;
    Ok(json!({ "id": id.to_string(), "seq": seq, "reacts_to": msg.to_string(), "reaction": text }))
}

/// `kith card`: the id, the addresses this node may be dialled at, its switchboards.
pub(crate) fn card(
    node: &Node,
    peers: Option<&PeerContext>,
    extra: Vec<String>,
) -> Result<Value, NodeError> {
    let mut addrs: Vec<String> = Vec::new();
    let mut switchboards = Vec::new();
    if let Some(p) = peers {
        if let Ok(local) = p.endpoint.local_addr() {
            // An unspecified address cannot be dialled: the switchboards' view stands in.
            if !local.ip().is_unspecified() {
                addrs.push(local.to_string());
            }
        }
        for link in p.relays.views() {
            if let Some(seen) = link.observed {
                addrs.push(seen);
            }
            // A switchboard by the name it was given; a cluster by the member the link is on.
            let Ok(cluster) = crate::net::target::Cluster::parse(&link.target) else {
                continue;
            };
            let host = match (cluster.members.as_slice(), link.member) {
                ([one], _) => Some(one.host.clone()),
                (_, member) => member,
            };
            if let (Some(id), Some(host)) = (link.id, host) {
                switchboards.push(format!("{id}@{host}"));
            }
        }
    }
    let mut all = extra;
    all.extend(addrs);
    let mut seen = BTreeSet::new();
    all.retain(|a| seen.insert(a.clone()));
    all.truncate(CARD_ADDRS_MAX);
    switchboards.truncate(CARD_SWITCHBOARDS_MAX);
    let card = Card {
        id: node.identity.id(),
        addrs: all,
        switchboards,
    };
    // Check what is handed out as a reader will (an `--addr` given wrong is refused here).
    let text = card.to_text();
    Card::parse(&text).map_err(|e| NodeError::NotFound(e.to_string()))?;
    Ok(json!({
        "card": text,
        "id": card.id.to_string(),
        "addrs": card.addrs,
        "switchboards": card.switchboards,
    }))
}

/// `kith follow CARD`: remember the card's switchboards (pinned) and link to the new ones at
/// once, follow with the card's addresses, and dial now (the dialer tries the addresses, then
/// the switchboard links this node has).
pub(crate) async fn follow_card(
    node: &Node,
    peers: Option<&PeerContext>,
    text: &str,
) -> Result<Value, NodeError> {
    let card = Card::parse(text).map_err(|e| NodeError::NotFound(e.to_string()))?;
    // What this node links to already, remembered or running: a card naming one of them (or a
    // member of a cluster it links to) adds no second link.
    let mut known: Vec<crate::net::target::Cluster> = node
        .store
        .read()?
        .switchboards()?
        .into_iter()
        .filter_map(|(_, text)| crate::net::target::Cluster::parse(&text).ok())
        .collect();
    if let Some(p) = peers {
        known.extend(
            p.relays
                .views()
                .iter()
                .filter_map(|v| crate::net::target::Cluster::parse(&v.target).ok()),
        );
    }
    let mut new_switchboards = Vec::new();
    let mut ops = Vec::new();
    for sb in &card.switchboards {
        let target = crate::net::target::Target::parse(sb)
            .map_err(|e| NodeError::NotFound(e.to_string()))?;
        let linked = known.iter().any(|c| {
            c.members.iter().any(|m| m.host == target.host)
                || target.id.is_some_and(|id| c.known_keys().contains(&id))
        });
        if !linked && !new_switchboards.contains(&target.to_text()) {
            new_switchboards.push(target.to_text());
            ops.push(Op::Switchboard(target.host.clone(), target.to_text()));
        }
    }
    if !ops.is_empty() {
        for outcome in crate::daemon::writer::submit(&node.writer, ops).await? {
            outcome?;
        }
    }
    // Link to the new switchboards now: the contact may be reachable only through them.
    if let Some(p) = peers {
        for target in &new_switchboards {
            if let Err(e) = crate::daemon::switchboard_link::start_link(p, target).await {
                tracing::warn!(switchboard = %target, error = %e, "switchboard link not started");
            }
        }
    }
    // Then follow: the dialer that starts now finds the links (an entry with no address and no
    // switchboard would hibernate at once).
    let mut entry = node
        .change(card.id, RolodexChange::Follow { addr: None })
        .await?;
    for addr in card.addrs.iter().rev() {
        entry = node
            .change(
                card.id,
                RolodexChange::Follow {
                    addr: Some(addr.clone()),
                },
            )
            .await?;
    }
    let mut dialled = None;
    if let Some(p) = peers {
        for addr in &card.addrs {
            let target = format!("{}@{addr}", card.id);
            if let Ok(peer) = crate::daemon::connect::connect(p, &target).await {
                dialled = Some(peer.to_string());
                break;
            }
        }
    }
    Ok(json!({
        "contact": ContactView::from(&entry),
        "connected": dialled,
        "switchboards_added": new_switchboards,
    }))
}
