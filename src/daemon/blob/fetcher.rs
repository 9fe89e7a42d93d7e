//! The blob fetcher: a thin actor around [`Planner`]. It reads the wanted feeds (the own one
//! and the followed, unblocked ones) for posts that attach blobs, fetches the missing ones from
//! connected peers ([`super::fetch`]), and drops fetched blobs that no wanted feed attaches any
//! more (after an unfollow or a block). Pinned blobs (added here) are never dropped.
//!
//! It learns from the node's events: `Appended` (read the new entries of a wanted feed),
//! `WantsChanged` and `Blocked` (re-read the wanted set, drop what is no longer referenced),
//! a `delete` entry read from a wanted feed (that feed's references are rebuilt from the store,
//! which no longer holds the deleted payload, and a blob only the deleted post attached is
//! dropped; deletes are rare, so re-reading one feed for each is cheap enough),
//! `Connected` / `Disconnected` (whom it may ask). A tick every [`BLOB_TICK`] retries what
//! is due. At start it reads every wanted feed once, [`BLOB_SCAN_BATCH`] entries per read
//! (the store keeps no index of attachments; a feed's entries are read once per start).
//! Permanent in the daemon's tree; its fetches are tasks it owns, aborted if it stops.

use std::collections::{BTreeMap, BTreeSet};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use crate::blob::plan::{to_drop, Fetch, Outcome, Planner};
use crate::daemon::blob::fetch::fetch;
use crate::daemon::context::PeerContext;
use crate::daemon::events::NodeEvent;
use crate::feed::{now_ms, Content, ContentType};
use crate::identity::FeedId;
use crate::limits::{BLOB_SCAN_BATCH, BLOB_TICK};
use crate::runtime::OwnedTask;

/// Messages to the fetcher.
#[derive(Debug)]
pub enum FetcherMsg {
    /// A node event.
    Event(NodeEvent),
    /// The event broadcast lagged: re-read everything.
    Resync,
    /// Time to look for due work.
    Tick,
    /// A fetch ended.
    Done(Fetch, Outcome),
}

/// The blob fetcher actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlobFetcher;

/// What the fetcher starts with.
#[derive(Clone)]
pub struct BlobFetcherArgs {
    /// The network context (the node, its blobs, the connections).
    pub ctx: PeerContext,
}

/// The fetcher's state.
pub struct FetcherState {
    ctx: PeerContext,
    planner: Planner,
    /// Wanted feeds and the sequence read up to in each.
    read_upto: BTreeMap<FeedId, u64>,
    connected: BTreeSet<FeedId>,
    fetches: JoinSet<()>,
    _tasks: Vec<OwnedTask>,
}

impl Actor for BlobFetcher {
    type Msg = FetcherMsg;
    type State = FetcherState;
    type Arguments = BlobFetcherArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ctx = args.ctx;
        let events = ctx.node.events.subscribe();
        let tasks = vec![
            OwnedTask::spawn(forward(events, myself.clone())),
            OwnedTask::spawn(tick(myself)),
        ];
        let mut state = FetcherState {
            planner: Planner::new(ctx.node.blobs.store.limits()),
            read_upto: BTreeMap::new(),
            connected: ctx.connections.peers().into_iter().collect(),
            fetches: JoinSet::new(),
            _tasks: tasks,
            ctx,
        };
        resync(&mut state)?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        while state.fetches.try_join_next().is_some() {}
        match msg {
            FetcherMsg::Event(NodeEvent::Appended { feed, seq }) => {
                if state.read_upto.contains_key(&feed) && read_feed(state, feed, seq)? {
                    reread_after_delete(state, feed, seq)?;
                }
            }
            FetcherMsg::Event(NodeEvent::WantsChanged | NodeEvent::Blocked(_)) => {
                rewant(state)?;
            }
            FetcherMsg::Event(NodeEvent::Connected(peer)) => {
                state.connected.insert(peer);
                state.planner.peer_up(&peer);
            }
            FetcherMsg::Event(NodeEvent::Disconnected(peer)) => {
                state.connected.remove(&peer);
            }
            FetcherMsg::Event(_) | FetcherMsg::Tick => {}
            FetcherMsg::Resync => resync(state)?,
            FetcherMsg::Done(done, outcome) => {
                state.planner.finished(&done, &outcome, now_ms());
            }
        }
        start_fetches(state, &myself);
        Ok(())
    }
}

/// Re-read the wanted set and every wanted feed from the start.
fn resync(state: &mut FetcherState) -> Result<(), ActorProcessingErr> {
    state.read_upto.clear();
    state.connected = state.ctx.connections.peers().into_iter().collect();
    rewant(state)
}

/// The wanted feeds now: read the new ones, forget the others, drop what nobody attaches.
fn rewant(state: &mut FetcherState) -> Result<(), ActorProcessingErr> {
    let node = &state.ctx.node;
    let mut wanted: BTreeSet<FeedId> = node
        .rolodex
        .list()
        .into_iter()
        .filter(|e| e.following && !e.blocked)
        .map(|e| e.id)
        .collect();
    wanted.insert(node.identity.id());
    state.read_upto.retain(|feed, _| wanted.contains(feed));
    state.planner.retain_feeds(&wanted);
    let heads = node.store.read()?;
    let mut fresh = Vec::new();
    for feed in &wanted {
        if !state.read_upto.contains_key(feed) {
            state.read_upto.insert(*feed, 0);
            fresh.push((*feed, heads.head(feed)?.map_or(0, |h| h.seq)));
        }
    }
    drop(heads);
    for (feed, seq) in fresh {
        read_feed(state, feed, seq)?;
    }
    drop_unreferenced(state)
}

/// `feed` deleted one of its messages: forget its references and read it again from the start
/// (the deleted payload is gone from the store), then drop what nobody attaches any more.
fn reread_after_delete(
    state: &mut FetcherState,
    feed: FeedId,
    upto: u64,
) -> Result<(), ActorProcessingErr> {
    let others: BTreeSet<FeedId> = state
        .read_upto
        .keys()
        .filter(|f| **f != feed)
        .copied()
        .collect();
    state.planner.retain_feeds(&others);
    state.read_upto.insert(feed, 0);
    read_feed(state, feed, upto)?;
    drop_unreferenced(state)
}

/// Every wanted feed has been read: what no wanted feed attaches can go (pinned blobs stay).
fn drop_unreferenced(state: &FetcherState) -> Result<(), ActorProcessingErr> {
    let store = &state.ctx.node.blobs.store;
    for id in to_drop(&store.list()?, &state.planner) {
        match store.remove(&id) {
            Ok(true) => tracing::info!(blob = %id, "dropped a blob no followed feed attaches"),
            Ok(false) => {}
            Err(e) => tracing::warn!(blob = %id, error = %e, "could not drop a blob"),
        }
    }
    Ok(())
}

/// Read `feed` from where it was read up to, through `upto`, noting the blobs its posts attach;
/// true if a `delete` entry was among those read.
fn read_feed(
    state: &mut FetcherState,
    feed: FeedId,
    upto: u64,
) -> Result<bool, ActorProcessingErr> {
    let Some(mut next) = state.read_upto.get(&feed).map(|s| s + 1) else {
        return Ok(false);
    };
    let mut deleted = false;
    let store = state.ctx.node.blobs.store.clone();
    while next <= upto {
        // One read transaction per batch, so a long feed does not pin an old snapshot.
        let reader = state.ctx.node.store.read()?;
        let stop = upto.min(next.saturating_add(BLOB_SCAN_BATCH as u64 - 1));
        let mut refs = Vec::new();
        let mut read_to = next - 1;
        for seq in next..=stop {
            let Some(entry) = reader.entry(&feed, seq)? else {
                break;
            };
            read_to = seq;
            match entry.header()?.content_type {
                ContentType::Post => {}
                ContentType::Delete => {
                    deleted = true;
                    continue;
                }
                _ => continue,
            }
            let Some(payload) = reader.payload(&feed, seq)? else {
                continue;
            };
            if let Ok(Content::Attached { blobs, .. }) = Content::decode(&payload) {
                refs.extend(blobs);
            }
        }
        drop(reader);
        next = read_to + 1;
        for blob in refs {
            let held = store.size_of(&blob.id)? == Some(blob.size);
            if let Err(skip) = state.planner.referenced(&blob, feed, held) {
                tracing::info!(blob = %blob.id, feed = %feed.short(), %skip, "attachment not fetched");
            }
        }
        if next <= stop {
            // The store holds less than announced: read on at the next append.
            break;
        }
    }
    state.read_upto.insert(feed, next.saturating_sub(1));
    Ok(deleted)
}

fn start_fetches(state: &mut FetcherState, myself: &ActorRef<FetcherMsg>) {
    let store = state.ctx.node.blobs.store.clone();
    let held = match store.held_bytes() {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, "cannot count the blobs held");
            return;
        }
    };
    let (fetches, skips) = state.planner.next(now_ms(), &state.connected, held);
    for (id, skip) in skips {
        tracing::info!(blob = %id, %skip, "attachment waits");
    }
    for order in fetches {
        let Some(conn) = state.ctx.connections.conn(&order.from) else {
            state.planner.finished(&order, &Outcome::Failed, now_ms());
            continue;
        };
        let (store, me) = (store.clone(), myself.clone());
        state.fetches.spawn(async move {
            let outcome = fetch(conn, order, store).await;
            let _ = me.cast(FetcherMsg::Done(order, outcome));
        });
    }
}

async fn forward(mut events: broadcast::Receiver<NodeEvent>, myself: ActorRef<FetcherMsg>) {
    loop {
        let msg = match events.recv().await {
            Ok(event) => FetcherMsg::Event(event),
            Err(broadcast::error::RecvError::Lagged(_)) => FetcherMsg::Resync,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if myself.cast(msg).is_err() {
            return;
        }
    }
}

async fn tick(myself: ActorRef<FetcherMsg>) {
    let mut every = tokio::time::interval(BLOB_TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if myself.cast(FetcherMsg::Tick).is_err() {
            return;
        }
    }
}
