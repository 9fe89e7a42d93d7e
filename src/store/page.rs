//! Newest-first listings one page at a time: `kith feed`, `timeline` and `mentions` with
//! `--before MSGID` (issue 14, item 6).
//!
//! A page is at most `limit` entries below a cursor ([`Before`]: the timestamp, author and
//! sequence of the message a client names, found through the message index), so a list longer
//! than the largest answer ([`QUERY_LIMIT_MAX`](crate::limits::QUERY_LIMIT_MAX)) is read in
//! pages instead of being cut. Each scan walks one key range downwards and stops at the limit;
//! the timeline's scan skips feeds not included, as the unpaged timeline does.

use std::ops::Bound;

use crate::feed::MsgId;
use crate::identity::FeedId;
use crate::store::keys::{entry_key, split_entry_key, timeline_entry, timeline_key};
use crate::store::read::Reader;
use crate::store::{StoreError, StoredEntry};

/// Where a newest-first page starts: below this message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Before {
    /// Its timestamp (ms since the epoch), as its header says.
    pub timestamp_ms: u64,
    /// Its author.
    pub author: FeedId,
    /// Its sequence.
    pub seq: u64,
}

impl Before {
    /// The timeline key of the message (timestamp ‖ author ‖ sequence).
    pub(super) fn timeline_key(&self) -> [u8; 48] {
        timeline_key(self.timestamp_ms, &self.author, self.seq)
    }
}

impl Reader<'_> {
    /// The cursor of message `id`, if it is held here.
    pub fn before_of(&self, id: &MsgId) -> Result<Option<Before>, StoreError> {
        let Some((author, seq)) = self.locate(id)? else {
            return Ok(None);
        };
        Ok(self.stored(&author, seq)?.map(|e| Before {
            timestamp_ms: e.header.timestamp_ms,
            author,
            seq,
        }))
    }

    /// `author`'s feed, newest first, at most `limit` entries below sequence `before` (all of
    /// it from the newest when `None`).
    pub fn feed_before(
        &self,
        author: &FeedId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let lower = entry_key(author, 0);
        let upper = entry_key(author, before.unwrap_or(u64::MAX));
        let bounds = (
            Bound::Included(&lower[..]),
            match before {
                Some(_) => Bound::Excluded(&upper[..]),
                None => Bound::Included(&upper[..]),
            },
        );
        let mut out = Vec::new();
        for item in self.tables.entries.rev_range(&self.txn, &bounds)? {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item?;
            if let Some((a, seq)) = split_entry_key(key) {
                out.extend(self.stored(&a, seq)?);
            }
        }
        Ok(out)
    }

    /// Posts of the feeds `include` accepts, newest first, at most `limit`, below `before`.
    pub fn timeline_before(
        &self,
        before: Option<&Before>,
        limit: usize,
        include: impl Fn(&FeedId) -> bool,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let upper = before.map(Before::timeline_key);
        let bounds = (
            Bound::Unbounded,
            match &upper {
                Some(k) => Bound::Excluded(&k[..]),
                None => Bound::Unbounded,
            },
        );
        let mut out = Vec::new();
        for item in self.tables.timeline.rev_range(&self.txn, &bounds)? {
            if out.len() >= limit {
                break;
            }
            let (key, _) = item?;
            let Some((author, seq)) = timeline_entry(key) else {
                continue;
            };
            if include(&author) {
                out.extend(self.stored(&author, seq)?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Content;
    use crate::ingest::{run_batch, Op};
    use crate::store::Store;

    /// Every page of 7 below the last one's cursor, concatenated, is the whole listing once,
    /// newest first; a full page may be followed by an empty one, never by a repeat.
    #[test]
    fn pages_below_a_cursor_give_every_entry_once_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let me = crate::identity::Identity::from_seed([3; 32]);
        let other = crate::identity::Identity::from_seed([4; 32]);
        let ops = |who: &crate::identity::Identity, n: usize| -> Vec<Op> {
            (0..n)
                .map(|i| {
                    Op::Publish(Content::Text {
                        text: format!("{} {i}", who.id().short()),
                        root: None,
                        branch: None,
                        mentions: vec![me.id()],
                    })
                })
                .collect()
        };
        run_batch(&store, &me, ops(&me, 20), 1_000).unwrap();
        run_batch(&store, &other, ops(&other, 15), 2_000).unwrap();
        let read = store.read().unwrap();
        let cursor = |e: &StoredEntry| Before {
            timestamp_ms: e.header.timestamp_ms,
            author: e.header.author,
            seq: e.header.seq,
        };
        // The feed, by sequence.
        let mut seqs = Vec::new();
        let mut before = None;
        loop {
            let page = read.feed_before(&me.id(), before, 7).unwrap();
            seqs.extend(page.iter().map(|e| e.header.seq));
            match page.last() {
                Some(last) if page.len() == 7 => before = Some(last.header.seq),
                _ => break,
            }
        }
        assert_eq!(seqs, (1..=20).rev().collect::<Vec<u64>>());
        // The timeline and the mentions, by cursor.
        type Page<'a> = Box<dyn Fn(Option<&Before>) -> Vec<StoredEntry> + 'a>;
        let timeline: Page = Box::new(|b| read.timeline_before(b, 7, |_| true).unwrap());
        let mentions: Page = Box::new(|b| read.mentions_before(&me.id(), b, 7).unwrap());
        for (name, list) in [("timeline", timeline), ("mentions", mentions)] {
            let mut ids = Vec::new();
            let mut before: Option<Before> = None;
            loop {
                let page = list(before.as_ref());
                ids.extend(page.iter().map(|e| e.id));
                match page.last() {
                    Some(last) if page.len() == 7 => before = Some(cursor(last)),
                    _ => break,
                }
            }
            let whole = match name {
                "timeline" => read.timeline(100, |_| true).unwrap(),
                _ => read.mentions(&me.id(), 100).unwrap(),
            };
            assert_eq!(whole.len(), 35, "{name}");
            assert_eq!(
                ids,
                whole.iter().map(|e| e.id).collect::<Vec<_>>(),
                "{name}"
            );
        }
        // A cursor is found from a message id.
        let newest = read.feed_before(&other.id(), None, 1).unwrap().remove(0);
        assert_eq!(read.before_of(&newest.id).unwrap(), Some(cursor(&newest)));
        assert_eq!(read.before_of(&crate::feed::MsgId([9; 32])).unwrap(), None);
    }
}
