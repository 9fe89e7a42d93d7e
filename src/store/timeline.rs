//! The timeline as threads, one page at a time: what the web page shows (issue 16).
//!
//! The flat `timeline` table lists posts newest first. A page groups them by thread: a thread
//! is placed once, where its newest post (of an included feed) falls, with its root above and
//! its latest replies below, oldest first. Paging is by a cursor (the timeline key of the last
//! post a page looked at): the next page starts below it and leaves out every thread that has
//! a post above it, since an earlier page placed that thread already. So a thread is shown on
//! exactly one page however its replies are spread in time.
//!
//! Every scan is bounded: a page reads at most [`TIMELINE_PAGE_SCAN_MAX`] timeline keys, and a
//! thread at most [`THREAD_REPLIES_MAX`] replies.

use std::collections::BTreeSet;

use crate::feed::{Content, MsgId};
use crate::identity::FeedId;
use crate::limits::{THREAD_REPLIES_MAX, TIMELINE_PAGE_SCAN_MAX};
use crate::store::keys::{split_entry_key, timeline_entry, timeline_key};
use crate::store::read::Reader;
use crate::store::{StoreError, StoredEntry};

/// Where a page of the timeline starts: below this post (timestamp, author, sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimelineCursor {
    /// The post's timestamp (ms since the epoch).
    pub timestamp_ms: u64,
    /// Its author.
    pub author: FeedId,
    /// Its sequence.
    pub seq: u64,
}

impl TimelineCursor {
    fn key(&self) -> [u8; 48] {
        timeline_key(self.timestamp_ms, &self.author, self.seq)
    }

    fn of(key: &[u8]) -> Option<TimelineCursor> {
        let ts: [u8; 8] = key.get(..8)?.try_into().ok()?;
        let (author, seq) = timeline_entry(key)?;
        Some(TimelineCursor {
            timestamp_ms: u64::from_be_bytes(ts),
            author,
            seq,
        })
    }
}

/// One thread on a page.
#[derive(Clone, Debug)]
pub struct TimelineThread {
    /// The root's id.
    pub root_id: MsgId,
    /// The root, if held (a reply to a post of a feed not replicated here has none).
    pub root: Option<StoredEntry>,
    /// The latest replies of included feeds, oldest first.
    pub replies: Vec<StoredEntry>,
    /// Replies of included feeds held but not in `replies` (older ones, shown on the thread's
    /// own page).
    pub more_replies: usize,
}

/// A page of threads, newest activity first.
#[derive(Clone, Debug, Default)]
pub struct TimelinePage {
    /// The threads.
    pub threads: Vec<TimelineThread>,
    /// Where the next page starts, if there may be one.
    pub next: Option<TimelineCursor>,
}

/// The thread a post belongs to: its root, or itself.
fn root_of(entry: &StoredEntry) -> MsgId {
    match &entry.content {
        Some(Content::Text { root: Some(r), .. }) => *r,
        Some(Content::Post {
            reply_to: Some(r), ..
        }) => *r,
        _ => entry.id,
    }
}

impl Reader<'_> {
    /// Up to `threads` threads of the feeds `include` accepts, placed by their newest post,
    /// starting below `before`; each with its root and at most `replies_shown` replies.
    pub fn timeline_threads(
        &self,
        before: Option<TimelineCursor>,
        threads: usize,
        replies_shown: usize,
        include: impl Fn(&FeedId) -> bool,
    ) -> Result<TimelinePage, StoreError> {
        let mut page = TimelinePage::default();
        let mut placed: BTreeSet<MsgId> = BTreeSet::new();
        let upper = before.map(|c| c.key());
        let bounds = (
            std::ops::Bound::Unbounded,
            match &upper {
                Some(k) => std::ops::Bound::Excluded(&k[..]),
                None => std::ops::Bound::Unbounded,
            },
        );
        let mut last: Option<TimelineCursor> = None;
        for (scanned, item) in self
            .tables
            .timeline
            .rev_range(&self.txn, &bounds)?
            .enumerate()
        {
            if page.threads.len() >= threads || scanned >= TIMELINE_PAGE_SCAN_MAX {
                page.next = last;
                break;
            }
            let (key, _) = item?;
            let Some(cursor) = TimelineCursor::of(key) else {
                continue;
            };
            last = Some(cursor);
            if !include(&cursor.author) {
                continue;
            }
            let Some(entry) = self.stored(&cursor.author, cursor.seq)? else {
                continue;
            };
            let root_id = root_of(&entry);
            if !placed.insert(root_id) {
                continue;
            }
            // A thread with a post at or above the cursor was placed by an earlier page.
            if let Some(upper) = &upper {
                if self.newest_in_thread(&root_id, &include)?.as_ref() >= Some(upper) {
                    continue;
                }
            }
            page.threads
                .push(self.timeline_thread(root_id, replies_shown, &include)?);
        }
        Ok(page)
    }

    /// The timeline key of the newest post of `root`'s thread by an included feed.
    fn newest_in_thread(
        &self,
        root: &MsgId,
        include: &impl Fn(&FeedId) -> bool,
    ) -> Result<Option<[u8; 48]>, StoreError> {
        let mut newest = None;
        if let Some(r) = self.message(root)? {
            if include(&r.header.author) {
                newest = Some(timeline_key(
                    r.header.timestamp_ms,
                    &r.header.author,
                    r.header.seq,
                ));
            }
        }
        for item in self
            .tables
            .social
            .replies
            .rev_prefix_iter(&self.txn, &root.0)?
            .take(THREAD_REPLIES_MAX)
        {
            let (key, _) = item?;
            let Some(rest) = key.get(32..80) else {
                continue;
            };
            let Some((author, _)) = split_entry_key(&rest[8..]) else {
                continue;
            };
            if include(&author) {
                let mut k = [0u8; 48];
                k.copy_from_slice(rest);
                newest = newest.max(Some(k));
                break;
            }
        }
        Ok(newest)
    }

    /// One thread as a page shows it: its root and at most `replies_shown` of its latest
    /// replies by included feeds.
    pub fn timeline_thread(
        &self,
        root_id: MsgId,
        replies_shown: usize,
        include: &impl Fn(&FeedId) -> bool,
    ) -> Result<TimelineThread, StoreError> {
        let root = self.message(&root_id)?;
        let mut newest_first = Vec::new();
        let mut more = 0usize;
        for item in self
            .tables
            .social
            .replies
            .rev_prefix_iter(&self.txn, &root_id.0)?
            .take(THREAD_REPLIES_MAX)
        {
            let (key, _) = item?;
            let Some((author, seq)) = key.get(40..).and_then(split_entry_key) else {
                continue;
            };
            if !include(&author) {
                continue;
            }
            if newest_first.len() >= replies_shown {
                more += 1;
                continue;
            }
            newest_first.extend(self.stored(&author, seq)?);
        }
        newest_first.reverse();
        Ok(TimelineThread {
            root_id,
            root,
            replies: newest_first,
            more_replies: more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::ingest::{run_batch, Op, OpOutcome};
    use crate::store::Store;

    fn post(
        store: &Store,
        who: &Identity,
        text: &str,
        ts: u64,
        reply: Option<(MsgId, MsgId)>,
    ) -> MsgId {
        let content = Content::Text {
            text: text.into(),
            root: reply.map(|r| r.0),
            branch: reply.map(|r| r.1),
            mentions: Vec::new(),
        };
        let outcomes = run_batch(store, who, vec![Op::Publish(content)], ts).unwrap();
        match outcomes.into_iter().next() {
            Some(Ok(OpOutcome::Appended { id, .. })) => id,
            other => panic!("not appended: {other:?}"),
        }
    }

    fn texts(page: &TimelinePage) -> Vec<String> {
        page.threads
            .iter()
            .map(|t| {
                let mut s: Vec<String> = t
                    .root
                    .iter()
                    .chain(&t.replies)
                    .filter_map(|e| e.content.as_ref()?.post_text().map(String::from))
                    .collect();
                if t.more_replies > 0 {
                    s.push(format!("+{}", t.more_replies));
                }
                s.join(",")
            })
            .collect()
    }

    #[test]
    fn threads_are_placed_once_by_their_newest_post_across_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let me = Identity::generate();
        let a = post(&store, &me, "a", 1_000, None);
        let _b = post(&store, &me, "b", 2_000, None);
        let _c = post(&store, &me, "c", 3_000, None);
        let a1 = post(&store, &me, "a1", 4_000, Some((a, a)));
        let _a2 = post(&store, &me, "a2", 5_000, Some((a, a1)));
        let _d = post(&store, &me, "d", 6_000, None);
        let all = |_: &FeedId| true;
        let reader = store.read().unwrap();
        let one = reader.timeline_threads(None, 2, 1, all).unwrap();
        assert_eq!(texts(&one), ["d", "a,a2,+1"]);
        let two = reader.timeline_threads(one.next, 2, 1, all).unwrap();
        // `a` had posts above the cursor: not shown again.
        assert_eq!(texts(&two), ["c", "b"]);
        let three = reader.timeline_threads(two.next, 2, 1, all).unwrap();
        assert_eq!(texts(&three), Vec::<String>::new());
        assert_eq!(three.next, None);
    }

    #[test]
    fn feeds_not_included_are_left_out_of_threads_and_activity() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let me = Identity::generate();
        let stranger = Identity::generate();
        let root = post(&store, &me, "mine", 1_000, None);
        let _other = post(&store, &me, "other", 2_000, None);
        post(&store, &stranger, "spam", 3_000, Some((root, root)));
        let mine = me.id();
        let reader = store.read().unwrap();
        let page = reader
            .timeline_threads(None, 10, 5, |id| *id == mine)
            .unwrap();
        assert_eq!(texts(&page), ["other", "mine"]);
    }
}
