//! The social indexes: who calls themselves what, which replies a thread holds, whom a post
//! mentions, and the reactions to each message. Built at ingest, in the same write transaction
//! as the entry they index (so they are never behind the feeds), from the entry's content.
//!
//! - `profiles`: author → postcard [`Profile`], the fields of the author's latest self-published
//!   about entries (an about of another feed is not a profile: nobody names someone else here).
//! - `replies`: root ‖ timestamp ‖ author ‖ seq → branch: the replies of a thread in time order.
//! - `mentions`: mentioned feed ‖ timestamp ‖ author ‖ seq → empty.
//! - `reactions`: message ‖ author ‖ seq → the reaction's text.
//! - `social_meta`: `indexed` once the entries held before these tables existed were indexed.
//!
//! A store made before these tables existed is indexed once at open ([`backfill`]). Entries
//! whose payload was deleted stay in the indexes and are skipped when read.

use std::collections::{BTreeMap, BTreeSet};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, RoTxn, RwTxn, WithoutTls};
use serde::{Deserialize, Serialize};

use crate::feed::ContentType;
use crate::feed::{Content, Header, MsgId};
use crate::identity::FeedId;
use crate::limits::{
    PROFILE_SCAN_MAX, REACTIONS_SCAN_MAX, REACTION_KINDS_SHOWN_MAX, THREAD_REPLIES_MAX,
};
use crate::store::keys::{entry_key, split_entry_key, PendingMsgs};
use crate::store::read::{decode, Reader};
use crate::store::{StoreError, StoredEntry, Table, Tables};

const INDEXED_KEY: &[u8] = b"indexed-v1";

/// The social index tables.
#[derive(Clone, Copy)]
pub(crate) struct SocialTables {
    profiles: Table,
    pub(super) replies: Table,
    mentions: Table,
    reactions: Table,
    meta: Table,
}

/// A feed's latest self-published name and description.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The name (as published: clean it before showing it, see [`crate::feed::names`]).
    pub name: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// Sequence of the latest about entry merged in.
    pub seq: u64,
    /// Its timestamp.
    pub timestamp_ms: u64,
}

/// One thread as held here: its root (if held) and its replies in time order.
#[derive(Clone, Debug)]
pub struct Thread {
    /// The root's id.
    pub root_id: MsgId,
    /// The root, unless this node does not hold it (or its payload was deleted).
    pub root: Option<StoredEntry>,
    /// The replies held, oldest first, each with the message it answers.
    pub replies: Vec<(StoredEntry, MsgId)>,
    /// Whether more replies are held than [`THREAD_REPLIES_MAX`] and the list stops there.
    pub truncated: bool,
}

impl SocialTables {
    /// Create (or open) the tables.
    pub(crate) fn create(env: &Env<WithoutTls>) -> Result<SocialTables, StoreError> {
        const NAMES: [&str; 5] = [
            "profiles",
            "replies",
            "mentions",
            "reactions",
            "social_meta",
        ];
        let wtxn = env.write_txn()?;
        let made = env.create_databases_and_commit(wtxn, |opener, wtxn| {
            let mut tables = Vec::with_capacity(NAMES.len());
            for name in NAMES {
                tables.push(opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?);
            }
            let tables: [Database<'_, Bytes, Bytes>; 5] = tables
                .try_into()
                .map_err(|_| heed::Error::Mdb(heed::MdbError::Incompatible))?;
            Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit(tables))
        })?;
        let CommitOrAbort::Commit([profiles, replies, mentions, reactions, meta]) = made else {
            return Err(StoreError::Corrupt {
                table: "social",
                reason: "table creation aborted".into(),
            });
        };
        Ok(SocialTables {
            profiles,
            replies,
            mentions,
            reactions,
            meta,
        })
    }
}

/// `prefix ‖ timestamp ‖ author ‖ seq`: 80 bytes.
fn timed_key(prefix: &[u8; 32], timestamp_ms: u64, author: &FeedId, seq: u64) -> [u8; 80] {
    let mut key = [0u8; 80];
    key[..32].copy_from_slice(prefix);
    key[32..40].copy_from_slice(&timestamp_ms.to_be_bytes());
    key[40..].copy_from_slice(&entry_key(author, seq));
    key
}

fn timed_entry(key: &[u8]) -> Option<(FeedId, u64)> {
    split_entry_key(key.get(40..)?)
}

/// `message ‖ author ‖ seq`: 72 bytes.
fn reaction_key(msg: &MsgId, author: &FeedId, seq: u64) -> [u8; 72] {
    let mut key = [0u8; 72];
    key[..32].copy_from_slice(&msg.0);
    key[32..].copy_from_slice(&entry_key(author, seq));
    key
}

fn corrupt(table: &'static str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.to_string(),
    }
}

/// The content of the entry with id `id`, read in `txn` (whose `msgs` rows not yet written are
/// `pending`).
fn content_of(
    txn: &RoTxn<'_>,
    tables: &Tables,
    pending: &PendingMsgs,
    id: &MsgId,
) -> Result<Option<Content>, StoreError> {
    let row = match pending.get(id) {
        Some(key) => Some(&key[..]),
        None => tables.msgs.get(txn, &id.0)?,
    };
    let Some((author, seq)) = row.and_then(split_entry_key) else {
        return Ok(None);
    };
    let Some(bytes) = tables.payloads.get(txn, &entry_key(&author, seq))? else {
        return Ok(None);
    };
    Ok(Content::decode(bytes).ok())
}

/// Index one appended entry (called in the transaction that appends it).
pub(crate) fn index(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    pending: &PendingMsgs,
    header: &Header,
    content: &Content,
) -> Result<(), StoreError> {
    let s = &tables.social;
    let (author, seq, at) = (header.author, header.seq, header.timestamp_ms);
    match content {
        Content::About {
            id,
            name,
            description,
        } if *id == author => {
            let mut profile: Profile = match s.profiles.get(txn, &author.0)? {
                Some(bytes) => decode("profiles", bytes)?,
                None => Profile::default(),
            };
            if seq < profile.seq {
                return Ok(());
            }
            // As in SSB, each about sets the fields it names and leaves the others.
            if name.is_some() {
                profile.name = name.clone();
            }
            if description.is_some() {
                profile.description = description.clone();
            }
            (profile.seq, profile.timestamp_ms) = (seq, at);
            let bytes = postcard::to_stdvec(&profile).map_err(|e| corrupt("profiles", e))?;
            s.profiles.put(txn, &author.0, &bytes)?;
        }
        Content::Text {
            root,
            branch,
            mentions,
            ..
        }
        | Content::Attached {
            root,
            branch,
            mentions,
            ..
        } => {
            if let (Some(root), Some(branch)) = (root, branch) {
                s.replies
                    .put(txn, &timed_key(&root.0, at, &author, seq), &branch.0)?;
            }
            for who in mentions {
                s.mentions
                    .put(txn, &timed_key(&who.0, at, &author, seq), &[])?;
            }
        }
        Content::Post {
            reply_to: Some(parent),
            ..
        } => {
            // The first form named only the parent: its thread is the parent's thread.
            let root = match content_of(txn, tables, pending, parent)? {
                Some(Content::Text { root: Some(r), .. }) => r,
                Some(Content::Post {
                    reply_to: Some(r), ..
                }) => r,
                _ => *parent,
            };
            s.replies
                .put(txn, &timed_key(&root.0, at, &author, seq), &parent.0)?;
        }
        Content::React { msg, text } => {
            s.reactions
                .put(txn, &reaction_key(msg, &author, seq), text.as_bytes())?;
        }
        _ => {}
    }
    Ok(())
}

/// Remove what [`index`] derived from an entry whose payload is being deleted: its place in a
/// thread, its mentions, a reaction's text. (A profile is never derived from a deletable entry.)
pub(crate) fn unindex(
    txn: &mut RwTxn<'_>,
    tables: &Tables,
    pending: &PendingMsgs,
    header: &Header,
    content: &Content,
) -> Result<(), StoreError> {
    let s = &tables.social;
    let (author, seq, at) = (header.author, header.seq, header.timestamp_ms);
    match content {
        // An attached post is indexed as a post is (its blobs are the blob store's to drop).
        Content::Text { root, mentions, .. } | Content::Attached { root, mentions, .. } => {
            if let Some(root) = root {
                s.replies
                    .delete(txn, &timed_key(&root.0, at, &author, seq))?;
            }
            for who in mentions {
                s.mentions
                    .delete(txn, &timed_key(&who.0, at, &author, seq))?;
            }
        }
        Content::Post {
            reply_to: Some(parent),
            ..
        } => {
            // The first form's row is under the root found as `index` found it.
            let root = match content_of(txn, tables, pending, parent)? {
                Some(Content::Text { root: Some(r), .. }) => r,
                Some(Content::Post {
                    reply_to: Some(r), ..
                }) => r,
                _ => *parent,
            };
            s.replies
                .delete(txn, &timed_key(&root.0, at, &author, seq))?;
        }
        Content::React { msg, .. } => {
            s.reactions.delete(txn, &reaction_key(msg, &author, seq))?;
        }
        _ => {}
    }
    Ok(())
}

/// Index every entry held, once, if the store predates the social indexes.
pub(crate) fn backfill(env: &Env<WithoutTls>, tables: &Tables) -> Result<u64, StoreError> {
    let mut wtxn = env.write_txn()?;
    if tables.social.meta.get(&wtxn, INDEXED_KEY)?.is_some() {
        return Ok(0);
    }
    let mut todo = Vec::new();
    for item in tables.payloads.iter(&wtxn)? {
        let (key, payload) = item?;
        let Some((author, seq)) = split_entry_key(key) else {
            continue;
        };
        if let Ok(content) = Content::decode(payload) {
            if !matches!(content, Content::Follow { .. } | Content::Unfollow { .. }) {
                todo.push((author, seq, content));
            }
        }
    }
    let mut done = 0;
    for (author, seq, content) in todo {
        let Some(entry) = tables.entries.get(&wtxn, &entry_key(&author, seq))? else {
            continue;
        };
        let entry = crate::feed::Entry(entry.to_vec());
        let Ok(header) = entry.header() else {
            continue;
        };
        index(&mut wtxn, tables, &PendingMsgs::new(), &header, &content)?;
        done += 1;
    }
    tables.social.meta.put(&mut wtxn, INDEXED_KEY, b"1")?;
    wtxn.commit()?;
    if done > 0 {
        tracing::info!(
            entries = done,
            "indexed names, threads, mentions and reactions"
        );
    }
    Ok(done)
}

/// What a feed's entries say about it, for its profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedSummary {
    /// Entries held.
    pub entries: u64,
    /// Posts among them.
    pub posts: u64,
    /// Feeds it follows now (its follows less its unfollows, in order).
    pub follows: BTreeSet<FeedId>,
    /// Whether the scan stopped at [`PROFILE_SCAN_MAX`] entries (the counts are then partial).
    pub partial: bool,
}

/// Reaction counts of one message: `(reaction, how many feeds gave it)`, most given first.
pub type Reactions = Vec<(String, u32)>;

impl Reader<'_> {
    /// `author`'s latest self-published profile.
    pub fn profile(&self, author: &FeedId) -> Result<Option<Profile>, StoreError> {
        match self.tables.social.profiles.get(&self.txn, &author.0)? {
            Some(bytes) => Ok(Some(decode("profiles", bytes)?)),
            None => Ok(None),
        }
    }

    /// Count `author`'s posts and follows (reads at most [`PROFILE_SCAN_MAX`] entries).
    pub fn feed_summary(&self, author: &FeedId) -> Result<FeedSummary, StoreError> {
        let mut out = FeedSummary::default();
        for item in self.tables.entries.prefix_iter(&self.txn, &author.0)? {
            if out.entries as usize >= PROFILE_SCAN_MAX {
                out.partial = true;
                break;
            }
            let (key, bytes) = item?;
            out.entries += 1;
            let header = crate::feed::Entry(bytes.to_vec())
                .header()
                .map_err(|e| corrupt("entries", e))?;
            match header.content_type {
                ContentType::Post => out.posts += 1,
                ContentType::Follow | ContentType::Unfollow => {
                    let content = self
                        .tables
                        .payloads
                        .get(&self.txn, key)?
                        .and_then(|p| Content::decode(p).ok());
                    match content {
                        Some(Content::Follow { id }) => {
                            out.follows.insert(id);
                        }
                        Some(Content::Unfollow { id }) => {
                            out.follows.remove(&id);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The entry with id `id`, decoded.
    pub fn message(&self, id: &MsgId) -> Result<Option<StoredEntry>, StoreError> {
        match self.locate(id)? {
            Some((author, seq)) => self.stored(&author, seq),
            None => Ok(None),
        }
    }

    /// The thread `id` belongs to (`id` may be its root or any reply held): the root and the
    /// replies held, oldest first, at most [`THREAD_REPLIES_MAX`].
    pub fn thread(&self, id: &MsgId) -> Result<Thread, StoreError> {
        let root_id = match self.message(id)?.and_then(|m| m.content) {
            Some(Content::Text { root: Some(r), .. })
            | Some(Content::Attached { root: Some(r), .. }) => r,
            Some(Content::Post {
                reply_to: Some(parent),
                ..
            }) => match self.message(&parent)?.and_then(|m| m.content) {
                Some(Content::Text { root: Some(r), .. }) => r,
                Some(Content::Post {
                    reply_to: Some(r), ..
                }) => r,
                _ => parent,
            },
            _ => *id,
        };
        let root = self.message(&root_id)?;
        let mut replies = Vec::new();
        let mut truncated = false;
        for item in self
            .tables
            .social
            .replies
            .prefix_iter(&self.txn, &root_id.0)?
        {
            let (key, branch) = item?;
            if replies.len() >= THREAD_REPLIES_MAX {
                truncated = true;
                break;
            }
            let branch: [u8; 32] = branch
                .try_into()
                .map_err(|_| corrupt("replies", "branch"))?;
            let Some((author, seq)) = timed_entry(key) else {
                continue;
            };
            if let Some(entry) = self.stored(&author, seq)? {
                replies.push((entry, MsgId(branch)));
            }
        }
        Ok(Thread {
            root_id,
            root,
            replies,
            truncated,
        })
    }

    /// Posts that mention `who`, newest first, at most `limit`.
    pub fn mentions(&self, who: &FeedId, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        self.mentions_before(who, None, limit)
    }

    /// Posts that mention `who`, newest first, at most `limit`, below `before` (a page of
    /// `kith mentions --before MSGID`; see [`crate::store::Before`]).
    pub fn mentions_before(
        &self,
        who: &FeedId,
        before: Option<&crate::store::Before>,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let lower = who.0;
        let upper = before.map(|b| timed_key(&who.0, b.timestamp_ms, &b.author, b.seq));
        let end = timed_key(&who.0, u64::MAX, &FeedId([0xff; 32]), u64::MAX);
        let bounds = (
            std::ops::Bound::Included(&lower[..]),
            match &upper {
                Some(k) => std::ops::Bound::Excluded(&k[..]),
                None => std::ops::Bound::Included(&end[..]),
            },
        );
        let mut out = Vec::new();
        for item in self.tables.social.mentions.rev_range(&self.txn, &bounds)? {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item?;
            if let Some((author, seq)) = timed_entry(key) {
                out.extend(self.stored(&author, seq)?);
            }
        }
        Ok(out)
    }

    /// The reactions to `msg`, counted once per feed and reaction; `blocked` feeds are left out.
    /// Reads at most [`REACTIONS_SCAN_MAX`]; shows at most [`REACTION_KINDS_SHOWN_MAX`] kinds.
    pub fn reactions(
        &self,
        msg: &MsgId,
        blocked: impl Fn(&FeedId) -> bool,
    ) -> Result<Reactions, StoreError> {
        let mut given: BTreeSet<(FeedId, Vec<u8>)> = BTreeSet::new();
        for item in self
            .tables
            .social
            .reactions
            .prefix_iter(&self.txn, &msg.0)?
            .take(REACTIONS_SCAN_MAX)
        {
            let (key, text) = item?;
            let Some((author, _)) = key.get(32..).and_then(split_entry_key) else {
                continue;
            };
            if !blocked(&author) {
                given.insert((author, text.to_vec()));
            }
        }
        let mut counts: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
        for (_, text) in given {
            *counts.entry(text).or_default() += 1;
        }
        let mut out: Reactions = counts
            .into_iter()
            .map(|(text, n)| (String::from_utf8_lossy(&text).into_owned(), n))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.truncate(REACTION_KINDS_SHOWN_MAX);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::ingest::{run_batch, Op, OpOutcome};
    use crate::store::Store;

    fn publish(store: &Store, who: &Identity, content: Content) -> MsgId {
        // Strictly increasing timestamps: two entries in one millisecond would be ordered by
        // their random ids, and the expected orders below would hold only by chance.
        static STEP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let step = STEP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut out = run_batch(
            store,
            who,
            vec![Op::Publish(content)],
            crate::feed::now_ms() + step,
        )
        .unwrap();
        match out.pop() {
            Some(Ok(OpOutcome::Appended { id, .. })) => id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn profiles_merge_threads_take_both_post_forms_and_reactions_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (Identity::generate(), Identity::generate());
        let about = |id, name: Option<&str>, description: Option<&str>| Content::About {
            id,
            name: name.map(str::to_string),
            description: description.map(str::to_string),
        };
        publish(&store, &a, about(a.id(), Some("Ada"), Some("first")));
        publish(&store, &a, about(a.id(), None, Some("second")));
        // An about of someone else is not their profile.
        publish(&store, &a, about(b.id(), Some("not Bob"), None));
        let root = publish(
            &store,
            &a,
            Content::Text {
                text: "root".into(),
                root: None,
                branch: None,
                mentions: vec![b.id()],
            },
        );
        let r1 = publish(
            &store,
            &b,
            Content::Text {
                text: "r1".into(),
                root: Some(root),
                branch: Some(root),
                mentions: vec![],
            },
        );
        // The first form of a reply names only its parent; it joins the parent's thread.
        let r2 = publish(
            &store,
            &a,
            Content::Post {
                text: "r2".into(),
                reply_to: Some(r1),
            },
        );
        for (who, text) in [(&b, "👍"), (&b, "👍"), (&a, "👍"), (&a, "wow")] {
            publish(
                &store,
                who,
                Content::React {
                    msg: root,
                    text: text.into(),
                },
            );
        }
        let r = store.read().unwrap();
        let profile = r.profile(&a.id()).unwrap().unwrap();
        assert_eq!(profile.name.as_deref(), Some("Ada"));
        assert_eq!(profile.description.as_deref(), Some("second"));
        assert_eq!(r.profile(&b.id()).unwrap(), None);
        for any in [root, r1, r2] {
            let t = r.thread(&any).unwrap();
            assert_eq!(t.root_id, root);
            let got: Vec<(MsgId, MsgId)> = t.replies.iter().map(|(e, p)| (e.id, *p)).collect();
            assert_eq!(got, vec![(r1, root), (r2, r1)]);
        }
        let mentions = r.mentions(&b.id(), 10).unwrap();
        assert_eq!(
            mentions.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![root]
        );
        assert!(r.mentions(&a.id(), 10).unwrap().is_empty());
        assert_eq!(
            r.reactions(&root, |_| false).unwrap(),
            vec![("👍".to_string(), 2), ("wow".to_string(), 1)]
        );
        let bid = b.id();
        assert_eq!(
            r.reactions(&root, |f| *f == bid).unwrap(),
            vec![("wow".to_string(), 1), ("👍".to_string(), 1)]
        );
        let summary = r.feed_summary(&a.id()).unwrap();
        assert_eq!((summary.entries, summary.posts), (7, 2));
    }

    #[test]
    fn a_store_made_before_the_indexes_is_indexed_once_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::generate();
        {
            let store = Store::open(dir.path()).unwrap();
            publish(
                &store,
                &a,
                Content::About {
                    id: a.id(),
                    name: Some("Ada".into()),
                    description: None,
                },
            );
            // Forget the indexes, as a store from before them would be.
            store
                .write(|w| {
                    let s = w.tables.social;
                    s.profiles.clear(&mut w.txn)?;
                    s.meta.clear(&mut w.txn)?;
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            assert_eq!(store.read().unwrap().profile(&a.id()).unwrap(), None);
        }
        let store = Store::open(dir.path()).unwrap();
        let profile = store.read().unwrap().profile(&a.id()).unwrap().unwrap();
        assert_eq!(profile.name.as_deref(), Some("Ada"));
    }
}
