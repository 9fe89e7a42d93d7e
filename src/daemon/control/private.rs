//! The control answers for private messages and deletion: `kith dm`, `kith inbox`,
//! `kith dm --thread`, `kith delete`.
//!
//! A private message is sealed here, with this node's key, and published like any entry; the
//! store notes the ones this node's key opens (its own and those sealed to it) and this module
//! opens them again to show them: no plaintext is ever written to the store. A recipient
//! receives a message only by replicating the sender's feed (no friends of friends), so `dm`
//! says which recipients do not follow the sender, when this node can know it: from their feed,
//! if it holds it, or from the clock they last sent in replication.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::daemon::control::social::Namer;
use crate::daemon::error::NodeError;
use crate::daemon::node::Node;
use crate::feed::private::{open, seal, Body};
use crate::feed::{Content, FeedError, MsgId};
use crate::identity::FeedId;
use crate::limits::{DM_RECIPIENTS_MAX, INBOX_CONVERSATIONS_MAX, INBOX_SCAN_MAX};
use crate::store::Reader;

/// Characters of a conversation's last message shown in the inbox.
const PREVIEW_CHARS: usize = 80;

fn parse_feed(text: &str) -> Result<FeedId, NodeError> {
    text.parse()
        .map_err(|e: crate::identity::IdentityError| NodeError::NotFound(e.to_string()))
}

/// Whether `who` follows `me`, as far as this node can tell (`None`: it cannot).
fn follows_me(reader: &Reader<'_>, who: &FeedId, me: &FeedId) -> Result<Option<bool>, NodeError> {
    if reader.head(who)?.is_some() {
        return Ok(Some(reader.feed_summary(who)?.follows.contains(me)));
    }
    let memory = reader.peer_memory(who)?;
    if !memory.received.is_empty() {
        // The clock they sent lists every feed they replicate.
        return Ok(Some(memory.received.contains_key(me)));
    }
    Ok(None)
}

/// `kith dm @ID… TEXT`: seal to the recipients and to this node, publish.
pub(crate) async fn dm(node: &Node, to: Vec<String>, text: String) -> Result<Value, NodeError> {
    if to.len() > DM_RECIPIENTS_MAX {
        return Err(FeedError::TooManyRecipients {
            len: to.len(),
            max: DM_RECIPIENTS_MAX,
        }
        .into());
    }
    let recipients: Vec<FeedId> = to.iter().map(|t| parse_feed(t)).collect::<Result<_, _>>()?;
    let me = node.identity.id();
    let sealed = seal(&node.identity, &recipients, &text, &mut rand::thread_rng())?;
    let (not_following, unknown) = {
        let reader = node.store.read()?;
        let mut not = Vec::new();
        let mut unknown = Vec::new();
        for who in &recipients {
            match follows_me(&reader, who, &me)? {
                Some(true) => {}
                Some(false) => not.push(*who),
                None => unknown.push(*who),
            }
        }
        (not, unknown)
    };
    let (id, seq) = node.publish(Content::Private { sealed }).await?;
    let namer = Namer::new(node, &node.store.read()?, recipients.iter().copied())?;
    let labels = |ids: &[FeedId]| -> Vec<Value> {
        ids.iter()
            .map(|i| json!({ "id": i.to_string(), "label": namer.label(i) }))
            .collect()
    };
    Ok(json!({
        "id": id.to_string(),
        "seq": seq,
        "recipients": labels(&recipients),
        "not_following": labels(&not_following),
        "unknown": labels(&unknown),
    }))
}

/// One private message as shown.
struct Opened {
    id: MsgId,
    timestamp_ms: u64,
    body: Body,
}

/// The private messages this node opens, newest first (at most [`INBOX_SCAN_MAX`] read), from
/// authors not blocked. Deleted ones are gone from the list: their readers are unknown without
/// the sealed bytes.
fn opened(node: &Node) -> Result<(Vec<Opened>, bool), NodeError> {
    let reader = node.store.read()?;
    let held = reader.inbox(INBOX_SCAN_MAX + 1)?;
    let partial = held.len() > INBOX_SCAN_MAX;
    let mut out = Vec::new();
    for (author, seq, sealed) in held.into_iter().take(INBOX_SCAN_MAX) {
        let Some(sealed) = sealed else { continue };
        if node.rolodex.is_blocked(&author) {
            continue;
        }
        let Some(entry) = reader.entry(&author, seq)? else {
            continue;
        };
        let Ok(header) = entry.header() else { continue };
        match open(&node.identity, &author, &sealed) {
            Ok(Some(body)) => out.push(Opened {
                id: entry.id(),
                timestamp_ms: header.timestamp_ms,
                body,
            }),
            // Checked when stored; a store that no longer opens is reported, not shown.
            Ok(None) | Err(_) => {
                tracing::warn!(author = %author.short(), seq, "a private message in the inbox no longer opens")
            }
        }
    }
    Ok((out, partial))
}

fn others(body: &Body, me: &FeedId) -> Vec<FeedId> {
    body.participants()
        .into_iter()
        .filter(|p| p != me)
        .collect()
}

fn preview(text: &str) -> String {
    let flat = crate::feed::names::clean(text);
    if flat.chars().count() <= PREVIEW_CHARS {
        return flat;
    }
    let cut: String = flat.chars().take(PREVIEW_CHARS).collect();
    format!("{}…", cut.trim_end())
}

/// `kith inbox`: conversations (each set of people a message was for), most recent first.
pub(crate) fn inbox(node: &Node, limit: usize) -> Result<Value, NodeError> {
    let me = node.identity.id();
    let (messages, partial) = opened(node)?;
    // Newest first: the first message seen of a conversation is its latest.
    let mut conversations: BTreeMap<Vec<FeedId>, (usize, &Opened)> = BTreeMap::new();
    let mut order: Vec<Vec<FeedId>> = Vec::new();
    for m in &messages {
        let with = others(&m.body, &me);
        match conversations.get_mut(&with) {
            Some((count, _)) => *count += 1,
            None => {
                order.push(with.clone());
                conversations.insert(with, (1, m));
            }
        }
    }
    let ids = messages.iter().flat_map(|m| m.body.participants());
    let namer = Namer::new(node, &node.store.read()?, ids)?;
    let shown = limit.min(INBOX_CONVERSATIONS_MAX);
    let list: Vec<Value> = order
        .iter()
        .take(shown)
        .filter_map(|with| conversations.get(with).map(|c| (with, c)))
        .map(|(with, (count, last))| {
            json!({
                "with": with.iter().map(|i| json!({ "id": i.to_string(), "label": namer.label(i) })).collect::<Vec<_>>(),
                "messages": count,
                "last_id": last.id.to_string(),
                "last_ms": last.timestamp_ms,
                "last_from": namer.label(&last.body.author),
                "last_text": preview(&last.body.text),
            })
        })
        .collect();
    Ok(json!({
        "conversations": list,
        "more": order.len() > shown,
        "partial": partial,
    }))
}

/// `kith dm --thread @ID`: the private messages `id` reads (or wrote) that this node opens,
/// oldest first (the latest `limit`).
pub(crate) fn thread(node: &Node, id: &str, limit: usize) -> Result<Value, NodeError> {
    let with = parse_feed(id)?;
    let (messages, partial) = opened(node)?;
    let mut picked: Vec<&Opened> = messages
        .iter()
        .filter(|m| m.body.participants().contains(&with))
        .take(limit)
        .collect();
    picked.reverse();
    let ids = picked
        .iter()
        .flat_map(|m| m.body.participants())
        .chain(std::iter::once(with));
    let namer = Namer::new(node, &node.store.read()?, ids)?;
    let list: Vec<Value> = picked
        .iter()
        .map(|m| {
            json!({
                "id": m.id.to_string(),
                "author": m.body.author.to_string(),
                "author_name": namer.label(&m.body.author),
                "timestamp_ms": m.timestamp_ms,
                "to": m.body.recipients.iter().map(|i| json!({ "id": i.to_string(), "label": namer.label(i) })).collect::<Vec<_>>(),
                "text": m.body.text,
            })
        })
        .collect();
    Ok(json!({
        "with": { "id": with.to_string(), "label": namer.label(&with) },
        "messages": list,
        "partial": partial,
    }))
}

/// `kith delete MSG`: take back one of this node's own messages.
pub(crate) async fn delete(node: &Node, id: &str) -> Result<Value, NodeError> {
    let msg: MsgId = id.parse()?;
    let held = node.store.read()?.message(&msg)?;
    let Some(target) = held else {
        return Err(NodeError::NotFound(format!(
            "{msg} is not held here; delete a message shown by `kith feed`"
        )));
    };
    if target.header.author != node.identity.id() {
        return Err(FeedError::DeleteNotOwn {
            msg,
            author: target.header.author,
        }
        .into());
    }
    // The store writer checks the rest (kind, already deleted) in the transaction that appends.
    let (id, seq) = node.publish(Content::Delete { msg }).await?;
    Ok(json!({ "id": id.to_string(), "seq": seq, "deletes": msg.to_string() }))
}
