//! What every page handler runs with, and the reads the pages share.
//!
//! The pages ask the node what the command line asks it: each read or change that `kith`
//! has a command for goes through the control socket's own [`dispatch`] (contacts, profile,
//! status, post, follow, …), so the page and the command line show the same answers. What the
//! command line has no command for is read here: the timeline as threads (one page at a time,
//! [`crate::store::Reader::timeline_threads`]), and replication progress with the sequence
//! peers announced, for the bars.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::daemon::context::PeerContext;
use crate::daemon::control::dispatch::dispatch;
use crate::daemon::control::social::entry_views;
use crate::daemon::control::view::EntryView;
use crate::daemon::node::Node;
use crate::daemon::web::auth::{cookie_name, Keys};
use crate::daemon::web::error::WebError;
use crate::daemon::web::guard::Allowed;
use crate::daemon::web::templates::{ContactRow, ProgressRow, ThreadView};
use crate::feed::MsgId;
use crate::identity::FeedId;
use crate::limits::{
    WEB_EVENT_STREAMS_MAX, WEB_PROGRESS_PEERS_MAX, WEB_TIMELINE_REPLIES_SHOWN, WEB_TIMELINE_THREADS,
};
use crate::runtime::control_socket::TreeReporter;
use crate::store::{StoredEntry, TimelineCursor, TimelineThread};
use crate::wire::control::Request;

/// The web page's shared state. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    /// The node.
    pub node: Node,
    /// The network context (absent on a node without one, as in the benchmark).
    pub peers: Option<PeerContext>,
    /// Reports the supervision tree (for the status page).
    pub tree: TreeReporter,
    /// The login token's keys.
    pub keys: Arc<Keys>,
    /// The names this server answers to.
    pub allowed: Arc<Allowed>,
    /// Live-update streams left.
    pub streams: Arc<Semaphore>,
    /// The session cookie's name (it carries the port: see [`cookie_name`]).
    pub cookie: Arc<str>,
    /// The data directory (for `config.toml` and staged uploads); set by the web worker,
    /// absent in the benchmark.
    pub data_dir: Option<Arc<std::path::Path>>,
}

impl WebState {
    /// The state of a page served for `node`.
    pub fn new(
        node: Node,
        peers: Option<PeerContext>,
        tree: TreeReporter,
        keys: Arc<Keys>,
        allowed: Allowed,
    ) -> WebState {
        WebState {
            node,
            peers,
            tree,
            keys,
            cookie: cookie_name(allowed.port()).into(),
            allowed: Arc::new(allowed),
            streams: Arc::new(Semaphore::new(WEB_EVENT_STREAMS_MAX)),
            data_dir: None,
        }
    }

    /// Ask the node what the control socket would be asked: the answer's data, or its error.
    pub async fn ask(&self, request: Request) -> Result<Value, WebError> {
        let response = dispatch(&self.node, &self.tree, self.peers.as_ref(), request).await;
        match (response.ok, response.data) {
            (true, Some(data)) => Ok(data),
            (true, None) => Ok(Value::Null),
            (false, _) => Err(WebError::Answer(
                response
                    .error
                    .unwrap_or_else(|| "the daemon did not say why".into()),
            )),
        }
    }

    /// Whether a feed belongs on the timeline: this node's, or one it follows.
    pub fn included(&self, id: &FeedId) -> bool {
        *id == self.node.identity.id() || self.node.rolodex.is_following(id)
    }

    /// One page of the timeline (below `before`), and where the next starts.
    pub fn timeline(
        &self,
        before: Option<TimelineCursor>,
    ) -> Result<(Vec<ThreadView>, Option<TimelineCursor>), WebError> {
        let page = self.node.store.read()?.timeline_threads(
            before,
            WEB_TIMELINE_THREADS,
            WEB_TIMELINE_REPLIES_SHOWN,
            |id| self.included(id),
        )?;
        Ok((self.thread_views(page.threads)?, page.next))
    }

    /// The thread `root` as the timeline shows it.
    pub fn thread(&self, root: MsgId) -> Result<ThreadView, WebError> {
        let thread = self.node.store.read()?.timeline_thread(
            root,
            WEB_TIMELINE_REPLIES_SHOWN,
            &|id: &FeedId| self.included(id),
        )?;
        Ok(self
            .thread_views(vec![thread])?
            .pop()
            .unwrap_or(ThreadView {
                root_id: root.to_string(),
                root: None,
                replies: Vec::new(),
                more: 0,
            }))
    }

    /// Threads with every entry named (one pass of [`entry_views`] for the whole page).
    fn thread_views(&self, threads: Vec<TimelineThread>) -> Result<Vec<ThreadView>, WebError> {
        let flat: Vec<StoredEntry> = threads
            .iter()
            .flat_map(|t| t.root.iter().chain(&t.replies).cloned())
            .collect();
        let mut views = entry_views(&self.node, &flat)?.into_iter();
        let mut out = Vec::with_capacity(threads.len());
        for t in threads {
            let root = match t.root {
                Some(_) => views.next(),
                None => None,
            };
            let replies: Vec<EntryView> = views.by_ref().take(t.replies.len()).collect();
            out.push(ThreadView {
                root_id: t.root_id.to_string(),
                root,
                replies,
                more: t.more_replies,
            });
        }
        Ok(out)
    }

    /// Entries as shown (names, what a reply answers, reactions).
    pub fn views(&self, list: &[StoredEntry]) -> Result<Vec<EntryView>, WebError> {
        Ok(entry_views(&self.node, list)?)
    }

    /// The rolodex as `kith contacts` answers it, with who follows this node back (read from
    /// the feeds held here, for the first [`WEB_PROGRESS_PEERS_MAX`] followed contacts).
    pub async fn contacts(&self) -> Result<Vec<ContactRow>, WebError> {
        let data = self.ask(Request::Contacts).await?;
        let mut rows: Vec<ContactRow> =
            serde_json::from_value(data["contacts"].clone()).unwrap_or_default();
        let me = self.node.identity.id();
        let reader = self.node.store.read()?;
        for row in rows
            .iter_mut()
            .filter(|r| r.following)
            .take(WEB_PROGRESS_PEERS_MAX)
        {
            if let Ok(id) = row.id.parse::<FeedId>() {
                row.follows_you = reader.feed_summary(&id)?.follows.contains(&me);
            }
        }
        Ok(rows)
    }

    /// Replication per followed feed: held, the highest sequence a peer announced, received.
    pub fn progress(&self) -> Result<Vec<ProgressRow>, WebError> {
        let reader = self.node.store.read()?;
        let received: std::collections::BTreeMap<FeedId, u64> = self
            .peers
            .as_ref()
            .map(|p| {
                p.replicators
                    .progress()
                    .into_iter()
                    .map(|(f, pr)| (f, pr.received))
                    .collect()
            })
            .unwrap_or_default();
        let follows = self.node.rolodex.following();
        // What each peer last said it holds (its clock, remembered per peer).
        let mut announced: std::collections::BTreeMap<FeedId, u64> = Default::default();
        let peers = self.node.rolodex.list();
        for peer in peers.iter().take(WEB_PROGRESS_PEERS_MAX) {
            for (feed, seq) in reader.peer_memory(&peer.id)?.received {
                let best = announced.entry(feed).or_default();
                *best = (*best).max(seq);
            }
        }
        let mut rows = Vec::with_capacity(follows.len());
        for feed in follows {
            let held = reader.head(&feed)?.map_or(0, |h| h.seq);
            let label = self
                .node
                .rolodex
                .get(&feed)
                .and_then(|e| e.petname.clone())
                .or_else(|| reader.profile(&feed).ok().flatten().and_then(|p| p.name))
                .map(|n| crate::feed::names::clean(&n))
                .unwrap_or_else(|| feed.short());
            rows.push(ProgressRow {
                feed: feed.to_string(),
                label,
                held,
                target: announced.get(&feed).copied().unwrap_or(0).max(held),
                received: received.get(&feed).copied().unwrap_or(0),
            });
        }
        Ok(rows)
    }
}

/// A cursor as it travels in a link: `TIMESTAMP-SEQ-AUTHORHEX`.
pub fn cursor_text(c: &TimelineCursor) -> String {
    let hex: String = c.author.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{hex}", c.timestamp_ms, c.seq)
}

/// A cursor read back from a link (`None` if it is not one).
pub fn parse_cursor(text: &str) -> Option<TimelineCursor> {
    let mut parts = text.splitn(3, '-');
    let timestamp_ms = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let hex = parts.next()?;
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut author = [0u8; 32];
    for (i, byte) in author.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(TimelineCursor {
        timestamp_ms,
        author: FeedId(author),
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_none() {
        let c = TimelineCursor {
            timestamp_ms: 1_700_000_000_000,
            author: FeedId([0xab; 32]),
            seq: 42,
        };
        assert_eq!(parse_cursor(&cursor_text(&c)), Some(c));
        for bad in [
            "",
            "1-2",
            "1-2-zz",
            "x-2-ab",
            &format!("1-2-{}", "é".repeat(32)),
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
