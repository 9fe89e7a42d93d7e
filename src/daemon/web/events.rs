//! Live updates: `GET /events`, a stream of server-sent events that `/static/app.js` turns into
//! changes of the open page, without a reload.
//!
//! - `post`: a new post of an included feed (own or followed), from the node's event broadcast
//!   (the store writer's `Appended`). Its thread is rendered by the same templates as the page
//!   (escaped server-side), with the ids the script needs to place it.
//! - `presence`: a contact came online, went offline or changed its status line, found by
//!   comparing `kith contacts`' answer every [`WEB_EVENT_TICK`].
//! - `progress`: a followed feed's replication bar moved (held, announced), found the same way.
//! - `dm`: a private message this node opens (sent or received), opened here from the entry
//!   just appended, as the inbox shows it (a conversation row and a thread item).
//! - `connections`: the set of live connections changed (a peer, or direct ↔ relayed), found
//!   by comparing the connections table every tick; the list is sent rendered, whole.
//!
//! Bounded: at most [`WEB_EVENT_STREAMS_MAX`](crate::limits::WEB_EVENT_STREAMS_MAX) streams
//! (past it `/events` answers 503 and the page simply does not update live), at most
//! [`WEB_EVENT_POSTS_MAX`] posts of one feed per wake-up, [`WEB_EVENT_CONTACTS_MAX`] contacts
//! watched. A stream that falls behind the broadcast catches up from the store, the truth.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, OwnedSemaphorePermit};

use crate::daemon::control::social::Namer;
use crate::daemon::events::NodeEvent;
use crate::daemon::web::error::WebError;
use crate::daemon::web::pages::Authed;
use crate::daemon::web::state::WebState;
use crate::daemon::web::templates::{self, dom_id, ConnRow, ConversationRow, DmMessage, Person};
use crate::feed::Content;
use crate::identity::FeedId;
use crate::limits::{
    WEB_EVENT_CONNECTIONS_MAX, WEB_EVENT_CONTACTS_MAX, WEB_EVENT_POSTS_MAX, WEB_EVENT_TICK,
};

/// Characters of a private message shown in a conversation row inserted live (as the inbox).
const DM_PREVIEW_CHARS: usize = 80;
use crate::store::StoredEntry;

/// `GET /events`.
pub async fn events(State(state): State<WebState>, Authed(_session): Authed) -> Response {
    let Ok(permit) = std::sync::Arc::clone(&state.streams).try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live pages are open; this one works, but without live updates\n",
        )
            .into_response();
    };
    let live = match Live::start(state, permit).await {
        Ok(live) => live,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        let event = live.next().await;
        Some((Ok::<Event, Infallible>(event), live))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One browser's stream.
struct Live {
    state: WebState,
    events: broadcast::Receiver<NodeEvent>,
    tick: tokio::time::Interval,
    /// The latest sequence already sent (or on the page) per feed.
    sent: BTreeMap<FeedId, u64>,
    presence: BTreeMap<String, (bool, Option<String>)>,
    progress: BTreeMap<String, (u64, u64)>,
    /// The connections last seen: (peer, relayed, address).
    connections: Vec<(String, bool, String)>,
    pending: VecDeque<Event>,
    _permit: OwnedSemaphorePermit,
}

impl Live {
    async fn start(state: WebState, permit: OwnedSemaphorePermit) -> Result<Live, WebError> {
        // Subscribe before reading the heads, so nothing appended in between is missed.
        let events = state.node.events.subscribe();
        let sent = state.node.store.read()?.heads()?.into_iter();
        let sent = sent.map(|(feed, head)| (feed, head.seq)).collect();
        let mut tick = tokio::time::interval(WEB_EVENT_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut live = Live {
            state,
            events,
            tick,
            sent,
            presence: BTreeMap::new(),
            progress: BTreeMap::new(),
            connections: Vec::new(),
            pending: VecDeque::new(),
            _permit: permit,
        };
        // What the page was rendered with: changes from here on are news.
        live.poll_changes(false).await;
        Ok(live)
    }

    async fn next(&mut self) -> Event {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            tokio::select! {
                received = self.events.recv() => match received {
                    Ok(NodeEvent::Appended { feed, seq }) => self.appended(feed, seq),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => self.catch_up(),
                    // The node is stopping: wait on the tick only (the connection ends with it).
                    Err(RecvError::Closed) => {
                        self.events = broadcast::channel(1).1;
                        self.tick.tick().await;
                    }
                },
                _ = self.tick.tick() => self.poll_changes(true).await,
            }
        }
    }

    /// Every included feed compared with the store (after the broadcast was missed).
    fn catch_up(&mut self) {
        let heads = match self.state.node.store.read().and_then(|r| r.heads()) {
            Ok(heads) => heads,
            Err(e) => {
                tracing::debug!(error = %e, "live page: heads not read");
                return;
            }
        };
        for (feed, head) in heads {
            self.appended(feed, head.seq);
        }
    }

    /// `feed` is held up to `seq` now: send its new posts (the newest few).
    fn appended(&mut self, feed: FeedId, seq: u64) {
        let last = self.sent.get(&feed).copied().unwrap_or(0);
        if seq <= last {
            return;
        }
        self.sent.insert(feed, seq);
        if !self.state.included(&feed) {
            return;
        }
        let from = (last + 1).max(seq.saturating_sub(WEB_EVENT_POSTS_MAX - 1));
        if let Err(e) = self.posts(feed, from, seq) {
            tracing::debug!(error = %e, "live page: new posts not sent");
        }
    }

    fn posts(&mut self, feed: FeedId, from: u64, to: u64) -> Result<(), WebError> {
        let reader = self.state.node.store.read()?;
        let mut entries: Vec<StoredEntry> = Vec::new();
        let mut private = Vec::new();
        for seq in from..=to {
            if let Some(e) = reader.stored(&feed, seq)? {
                if e.content.as_ref().and_then(Content::post_text).is_some() {
                    entries.push(e);
                } else if let Some(Content::Private { sealed }) = &e.content {
                    private.push((e.id, e.header.timestamp_ms, sealed.clone()));
                }
            }
        }
        if !private.is_empty() {
            let events = private_events(&self.state, &reader, feed, private)?;
            self.pending.extend(events);
        }
        drop(reader);
        if entries.is_empty() {
            return Ok(());
        }
        let views = self.state.views(&entries)?;
        for (entry, view) in entries.iter().zip(views) {
            let root = match &entry.content {
                Some(Content::Text { root: Some(r), .. }) => *r,
                Some(Content::Post {
                    reply_to: Some(r), ..
                }) => *r,
                _ => entry.id,
            };
            let thread = self.state.thread(root)?;
            let data = json!({
                "thread_id": dom_id("t-", &thread.root_id),
                "thread": templates::thread(&thread).into_string(),
                "post_id": dom_id("m-", &view.id),
                "author": view.author,
                "post": maud::html! { li { (templates::post(&view)) } }.into_string(),
            });
            self.pending
                .push_back(Event::default().event("post").data(data.to_string()));
        }
        Ok(())
    }

    /// The live connections, when they changed since the last look.
    async fn poll_connections(&mut self, send: bool, labels: &BTreeMap<String, String>) {
        let Some(peers) = &self.state.peers else {
            return;
        };
        let mut views = peers.connections.views();
        views.sort_by(|a, b| a.peer.cmp(&b.peer));
        views.truncate(WEB_EVENT_CONNECTIONS_MAX);
        let now: Vec<(String, bool, String)> = views
            .iter()
            .map(|c| (c.peer.clone(), c.relayed, c.addr.clone()))
            .collect();
        if now == self.connections {
            return;
        }
        self.connections = now;
        if !send {
            return;
        }
        let rows: Vec<ConnRow> = views
            .into_iter()
            .map(|c| ConnRow {
                label: labels
                    .get(&c.peer)
                    .cloned()
                    .unwrap_or_else(|| templates::short_label(&c.peer)),
                peer: c.peer,
                addr: c.addr,
                relayed: c.relayed,
                rtt_us: c.rtt_us,
            })
            .collect();
        let data = json!({ "html": templates::connections(&rows).into_string() });
        self.pending
            .push_back(Event::default().event("connections").data(data.to_string()));
    }

    /// Presence and replication compared with the last look; `send`: queue what changed.
    async fn poll_changes(&mut self, send: bool) {
        let mut labels = BTreeMap::new();
        match self.state.contacts().await {
            Ok(rows) => {
                labels = rows
                    .iter()
                    .map(|r| (r.id.clone(), r.label.clone()))
                    .collect();
                for row in rows.into_iter().take(WEB_EVENT_CONTACTS_MAX) {
                    let now = (row.online, row.status.clone());
                    if self.presence.get(&row.id) != Some(&now) {
                        if send {
                            let data =
                                json!({ "id": row.id, "online": row.online, "status": row.status });
                            self.pending.push_back(
                                Event::default().event("presence").data(data.to_string()),
                            );
                        }
                        self.presence.insert(row.id, now);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "live page: contacts not read"),
        }
        match self.state.progress() {
            Ok(rows) => {
                for row in rows {
                    let now = (row.held, row.target);
                    if self.progress.get(&row.feed) != Some(&now) {
                        if send {
                            let data =
                                json!({ "feed": row.feed, "held": row.held, "target": row.target });
                            self.pending.push_back(
                                Event::default().event("progress").data(data.to_string()),
                            );
                        }
                        self.progress.insert(row.feed, now);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "live page: progress not read"),
        }
        self.poll_connections(send, &labels).await;
    }
}

/// Private messages of `feed` this node opens: one `dm` event each.
fn private_events(
    state: &WebState,
    reader: &crate::store::Reader<'_>,
    feed: FeedId,
    sealed: Vec<(crate::feed::MsgId, u64, Vec<u8>)>,
) -> Result<Vec<Event>, WebError> {
    let node = &state.node;
    let mut out = Vec::new();
    if node.rolodex.is_blocked(&feed) {
        return Ok(out);
    }
    let me = node.identity.id();
    for (id, timestamp_ms, bytes) in sealed {
        // A message not for this node does not open: nothing is sent for it.
        let Ok(Some(body)) = crate::feed::private::open(&node.identity, &feed, &bytes) else {
            continue;
        };
        let everyone = body.participants();
        let namer = Namer::new(node, reader, everyone.iter().copied())?;
        let person = |i: &FeedId| Person {
            id: i.to_string(),
            label: namer.label(i),
        };
        let with: Vec<Person> = everyone.iter().filter(|p| **p != me).map(person).collect();
        let message = DmMessage {
            id: id.to_string(),
            author: body.author.to_string(),
            author_name: namer.label(&body.author),
            timestamp_ms,
            to: body.recipients.iter().map(person).collect(),
            text: body.text.clone(),
        };
        let row = ConversationRow {
            with,
            messages: None,
            last_ms: timestamp_ms,
            last_from: namer.label(&body.author),
            last_text: crate::feed::names::clean(&body.text)
                .chars()
                .take(DM_PREVIEW_CHARS)
                .collect(),
        };
        let data = json!({
            "participants": everyone.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "conversation_id": templates::conversation_dom_id(&row.with),
            "conversation": templates::conversation(&row).into_string(),
            "message_id": dom_id("m-", &message.id),
            "message": templates::dm_message(&message).into_string(),
        });
        out.push(Event::default().event("dm").data(data.to_string()));
    }
    Ok(out)
}
