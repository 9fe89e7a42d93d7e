//! Live updates: `GET /events`, a stream of server-sent events that `/static/app.js` turns into
//! changes of the open page, without a reload.
//!
//! - `post`: a new post of an included feed (own or followed), from the node's event broadcast
//!   (the store writer's `Appended`). Its thread is rendered by the same templates as the page
//!   (escaped server-side), with the ids the script needs to place it.
//! - `presence`: a contact came online, went offline or changed its status line, found by
//!   comparing `kith contacts`' answer every [`WEB_EVENT_TICK`].
//! - `progress`: a followed feed's replication bar moved (held, announced), found the same way.
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

use crate::daemon::events::NodeEvent;
use crate::daemon::web::error::WebError;
use crate::daemon::web::pages::Authed;
use crate::daemon::web::state::WebState;
use crate::daemon::web::templates::{self, dom_id};
use crate::feed::Content;
use crate::identity::FeedId;
use crate::limits::{WEB_EVENT_CONTACTS_MAX, WEB_EVENT_POSTS_MAX, WEB_EVENT_TICK};
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
        for seq in from..=to {
            if let Some(e) = reader.stored(&feed, seq)? {
                if e.content.as_ref().and_then(Content::post_text).is_some() {
                    entries.push(e);
                }
            }
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

    /// Presence and replication compared with the last look; `send`: queue what changed.
    async fn poll_changes(&mut self, send: bool) {
        match self.state.contacts().await {
            Ok(rows) => {
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
    }
}
