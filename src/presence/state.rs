//! The presence CRDT: a causal, delta-state, add-wins observed-remove set of rows.
//!
//! State = dot store + causal context (compact version vector plus dot cloud), as in Phoenix.Tracker
//! (`research/tracker-spec.md` §2), with these departures, each fixing a known Phoenix bug:
//!
//! - **One row identity, newest dot wins (#148).** A row is identified by `(topic, key, replica,
//!   owner)`, written only by its replica, whose dots are totally ordered. An incoming older dot for
//!   a row we hold at a newer dot is stale (the origin removed it before making the newer one): it
//!   is marked seen and dropped, never overwrites.
//! - **Merges cost what the payload holds.** Removes in a delta can only concern the dots its
//!   clouds name, so a delta merge looks those up instead of scanning the state.
//! - **Every consumed dot lands in the outgoing delta (#175/#176)**, and updates overwrite the row
//!   in place so that a reader never sees it vanish (#172).
//! - **Permdown forgets the replica entirely (#179)**, visibility entry included.
//! - **Diffs track the visible set exactly.** Joins of rows whose replica is down are not reported;
//!   they are reported when it comes back up. So folding the diffs gives the visible set.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use super::delta::{Clouds, Ctx, Delta, FullState, Payload};
use super::types::{Diff, Dot, Meta, Owner, Presence, ReplicaRef, Row, SharedRow};

/// Whether a known replica's rows are visible.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    /// Visible.
    Up,
    /// Hidden but kept: the replica may come back with the same incarnation.
    Down,
}

/// A local operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The owner already holds this (topic, key).
    #[error("owner {owner:?} already tracks {key:?} in {topic:?}")]
    AlreadyTracked {
        /// Owner.
        owner: Owner,
        /// Topic.
        topic: String,
        /// Key.
        key: String,
    },
    /// Update of a presence that does not exist.
    #[error("no such presence")]
    NoPresence,
}

/// Identity of a row inside its topic: `(key, replica, owner)`, ordered in that order.
trait RowId {
    fn id(&self) -> (&str, &ReplicaRef, Owner);
}

impl PartialEq for dyn RowId + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for dyn RowId + '_ {}

impl PartialOrd for dyn RowId + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn RowId + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.id().cmp(&other.id())
    }
}

/// One entry of a topic's index: the stored row itself (which holds its key and owner) and its
/// replica, both shared, so an entry is two pointers and no key is copied.
#[derive(Clone, Debug)]
struct IndexKey {
    row: SharedRow,
    replica: Arc<ReplicaRef>,
}

impl RowId for IndexKey {
    fn id(&self) -> (&str, &ReplicaRef, Owner) {
        (&self.row.key, &self.replica, self.row.owner)
    }
}

impl<'a> Borrow<dyn RowId + 'a> for IndexKey {
    fn borrow(&self) -> &(dyn RowId + 'a) {
        self
    }
}

impl PartialEq for IndexKey {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for IndexKey {}

impl PartialOrd for IndexKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IndexKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.id().cmp(&other.id())
    }
}

/// A row identity to look up, borrowed from the caller.
struct Probe<'a> {
    key: &'a str,
    replica: &'a ReplicaRef,
    owner: Owner,
}

impl RowId for Probe<'_> {
    fn id(&self) -> (&str, &ReplicaRef, Owner) {
        (self.key, self.replica, self.owner)
    }
}

/// The probe for `row` of `replica`.
fn probe<'a>(replica: &'a ReplicaRef, row: &'a Row) -> Probe<'a> {
    Probe {
        key: &row.key,
        replica,
        owner: row.owner,
    }
}

/// A topic's rows by `(key, replica, owner)`, with the clock of the dot each is stored at.
type TopicIndex = BTreeMap<IndexKey, u64>;

/// One replica's stored rows by clock, and the replica itself, shared with the topic index.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Rows {
    replica: Arc<ReplicaRef>,
    rows: HashMap<u64, SharedRow>,
}

impl Rows {
    fn new(replica: &ReplicaRef) -> Self {
        Self {
            replica: Arc::new(replica.clone()),
            rows: HashMap::new(),
        }
    }
}

/// One replica's CRDT state. See the module doc.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct State {
    me: ReplicaRef,
    context: Ctx,
    clouds: Clouds,
    values: HashMap<ReplicaRef, Rows>,
    topics: HashMap<String, TopicIndex>,
    /// Own rows by owner: `(owner, clock)`; the row itself is found through `values`.
    owners: BTreeSet<(Owner, u64)>,
    status: HashMap<ReplicaRef, Status>,
    delta: Delta,
}

impl State {
    /// A fresh state for replica `me`.
    pub fn new(me: ReplicaRef) -> Self {
        let context = [(me.clone(), 0)].into_iter().collect();
        let status = [(me.clone(), Status::Up)].into_iter().collect();
        let delta = Delta::empty_at(&me, 0);
        Self {
            me,
            context,
            clouds: Clouds::new(),
            values: HashMap::new(),
            topics: HashMap::new(),
            owners: BTreeSet::new(),
            status,
            delta,
        }
    }

    /// This replica.
    pub fn replica(&self) -> &ReplicaRef {
        &self.me
    }

    /// The compact part of the causal context.
    pub fn context(&self) -> &Ctx {
        &self.context
    }

    /// The dot clouds (dots seen beyond the compact context).
    pub fn clouds(&self) -> &Clouds {
        &self.clouds
    }

    /// The context without down replicas: what heartbeats carry (#135/#136).
    pub fn clocks(&self) -> Ctx {
        let up = |r: &ReplicaRef| self.status.get(r) == Some(&Status::Up);
        self.context
            .iter()
            .filter(|(r, _)| up(r))
            .map(|(r, v)| (r.clone(), *v))
            .collect()
    }

    /// The delta being built since the last reset.
    pub fn delta(&self) -> &Delta {
        &self.delta
    }

    /// True when the delta covers at least one dot.
    pub fn has_delta(&self) -> bool {
        self.delta.has_dots()
    }

    /// Takes the current delta and starts a fresh one at the current clock.
    pub fn reset_delta(&mut self) -> Delta {
        let fresh = Delta::empty_at(&self.me, self.own_clock());
        std::mem::replace(&mut self.delta, fresh)
    }

    /// Status of a known replica.
    pub fn status(&self, replica: &ReplicaRef) -> Option<Status> {
        self.status.get(replica).copied()
    }

    /// Known replicas with their status (self included).
    pub fn replicas(&self) -> impl Iterator<Item = (&ReplicaRef, Status)> {
        self.status.iter().map(|(r, s)| (r, *s))
    }

    /// Number of stored rows, visible or not.
    pub fn len(&self) -> usize {
        self.values.values().map(|r| r.rows.len()).sum()
    }

    /// True when no row is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `(replica, clock)` is in the causal context.
    pub fn seen(&self, replica: &ReplicaRef, clock: u64) -> bool {
        self.context.get(replica).is_some_and(|c| *c >= clock)
            || self.clouds.get(replica).is_some_and(|c| c.contains(&clock))
    }

    fn own_clock(&self) -> u64 {
        self.context.get(&self.me).copied().unwrap_or(0)
    }

    fn visible(&self, replica: &ReplicaRef) -> bool {
        self.status.get(replica) == Some(&Status::Up)
    }

    fn presence(replica: &ReplicaRef, clock: u64, row: &SharedRow) -> Presence {
        Presence {
            row: row.clone(),
            dot: Dot {
                replica: replica.clone(),
                clock,
            },
        }
    }

    // ----- reads -------------------------------------------------------------------------------

    /// Visible presences of a topic, ordered by key.
    pub fn list(&self, topic: &str) -> Vec<Presence> {
        let Some(rows) = self.topics.get(topic) else {
            return Vec::new();
        };
        rows.iter()
            .filter(|(k, _)| self.visible(&k.replica))
            .map(|(k, n)| Self::presence(&k.replica, *n, &k.row))
            .collect()
    }

    /// Visible presences of one key in a topic (one per owner).
    pub fn get_by_key(&self, topic: &str, key: &str) -> Vec<Presence> {
        let Some(rows) = self.topics.get(topic) else {
            return Vec::new();
        };
        let least = ReplicaRef::new("", 0);
        let from = Probe {
            key,
            replica: &least,
            owner: Owner(0),
        };
        let from: &dyn RowId = &from;
        rows.range::<dyn RowId, _>((Bound::Included(from), Bound::Unbounded))
            .take_while(|(k, _)| k.row.key == key)
            .filter(|(k, _)| self.visible(&k.replica))
            .map(|(k, n)| Self::presence(&k.replica, *n, &k.row))
            .collect()
    }

    /// Every presence held by a local owner.
    pub fn get_by_owner(&self, owner: Owner) -> Vec<Presence> {
        self.owners
            .range((owner, 0)..=(owner, u64::MAX))
            .filter_map(|(_, n)| {
                self.lookup(&self.me, *n)
                    .map(|row| Self::presence(&self.me, *n, row))
            })
            .collect()
    }

    /// The presence of a local owner at (topic, key).
    pub fn get(&self, owner: Owner, topic: &str, key: &str) -> Option<Presence> {
        let probe = Probe {
            key,
            replica: &self.me,
            owner,
        };
        let n = *self.topics.get(topic)?.get(&probe as &dyn RowId)?;
        self.lookup(&self.me, n)
            .map(|row| Self::presence(&self.me, n, row))
    }

    /// Every stored row of one replica, visible or not.
    pub fn rows_of(&self, replica: &ReplicaRef) -> Vec<Presence> {
        let Some(rows) = self.values.get(replica) else {
            return Vec::new();
        };
        rows.rows
            .iter()
            .map(|(n, row)| Self::presence(replica, *n, row))
            .collect()
    }

    /// Every visible presence, of every topic.
    pub fn visible_presences(&self) -> Vec<Presence> {
        let mut out = Vec::new();
        for (r, rows) in &self.values {
            if self.visible(r) {
                out.extend(rows.rows.iter().map(|(n, row)| Self::presence(r, *n, row)));
            }
        }
        out
    }

    /// Number of visible presences.
    pub fn visible_count(&self) -> usize {
        self.values
            .iter()
            .filter(|(r, _)| self.visible(r))
            .map(|(_, v)| v.rows.len())
            .sum()
    }

    /// The stored row at a dot.
    pub fn lookup(&self, replica: &ReplicaRef, clock: u64) -> Option<&SharedRow> {
        self.values.get(replica)?.rows.get(&clock)
    }

    // ----- local mutations ---------------------------------------------------------------------

    /// Consumes the next own dot; every consumed dot lands in the delta.
    fn bump(&mut self) -> u64 {
        let n = self.own_clock() + 1;
        self.context.insert(self.me.clone(), n);
        self.delta.cover(&self.me.clone(), n);
        self.delta.end.insert(self.me.clone(), n);
        n
    }

    /// Adds a presence for a local owner (Phoenix `join`).
    pub fn track(
        &mut self,
        owner: Owner,
        topic: &str,
        key: &str,
        meta: Meta,
    ) -> Result<Diff, StateError> {
        if self.get(owner, topic, key).is_some() {
            return Err(StateError::AlreadyTracked {
                owner,
                topic: topic.into(),
                key: key.into(),
            });
        }
        let n = self.bump();
        let row: SharedRow = Row {
            topic: topic.into(),
            key: key.into(),
            owner,
            meta,
        }
        .into();
        let me = self.me.clone();
        let p = Self::presence(&me, n, &row);
        self.delta
            .values
            .entry(me.clone())
            .or_default()
            .insert(n, row.clone());
        self.insert_row(&me, n, row);
        Ok(Diff {
            joins: vec![p],
            leaves: vec![],
        })
    }

    /// Removes a local presence (Phoenix `leave/4`). Untracking nothing is a no-op.
    pub fn untrack(&mut self, owner: Owner, topic: &str, key: &str) -> Diff {
        let Some(old) = self.get(owner, topic, key) else {
            return Diff::default();
        };
        let me = self.me.clone();
        self.remove_row(&me, old.dot.clock);
        self.delta.drop_value(&me, old.dot.clock);
        self.delta.cover(&me, old.dot.clock);
        self.bump();
        Diff {
            joins: vec![],
            leaves: vec![old],
        }
    }

    /// Removes every presence of a local owner (Phoenix `leave/2`).
    pub fn untrack_owner(&mut self, owner: Owner) -> Diff {
        let mut diff = Diff::default();
        for p in self.get_by_owner(owner) {
            diff.extend(self.untrack(owner, &p.row.topic, &p.row.key));
        }
        diff
    }

    /// Replaces the meta of a local presence in one step (Phoenix `leave_join`). The row is
    /// overwritten in place, and both the remove dot and the add dot go into the delta.
    pub fn update(
        &mut self,
        owner: Owner,
        topic: &str,
        key: &str,
        f: impl FnOnce(&Meta) -> Meta,
    ) -> Result<Diff, StateError> {
        let old = self.get(owner, topic, key).ok_or(StateError::NoPresence)?;
        let me = self.me.clone();
        let m = old.dot.clock;
        self.delta.drop_value(&me, m);
        self.delta.cover(&me, m);
        self.bump();
        let n = self.bump();
        let row: SharedRow = Row {
            meta: f(&old.row.meta),
            ..Row::clone(&old.row)
        }
        .into();
        let new = Self::presence(&me, n, &row);
        self.delta
            .values
            .entry(me.clone())
            .or_default()
            .insert(n, row.clone());
        self.replace_row(&me, m, n, row);
        Ok(Diff {
            joins: vec![new],
            leaves: vec![old],
        })
    }

    // ----- row bookkeeping ---------------------------------------------------------------------

    /// Stores `row` at dot `(replica, n)` and indexes it. The caller has removed any older
    /// version of the same row first: the index keeps the first key it was given for a row.
    fn insert_row(&mut self, replica: &ReplicaRef, n: u64, row: SharedRow) {
        let rows = self
            .values
            .entry(replica.clone())
            .or_insert_with(|| Rows::new(replica));
        let key = IndexKey {
            row: row.clone(),
            replica: Arc::clone(&rows.replica),
        };
        if *replica == self.me {
            self.owners.insert((row.owner, n));
        }
        match self.topics.get_mut(&row.topic) {
            Some(t) => {
                t.insert(key, n);
            }
            None => {
                self.topics
                    .insert(row.topic.clone(), [(key, n)].into_iter().collect());
            }
        }
        rows.rows.insert(n, row);
    }

    /// Overwrites row `m` by row `n` (same identity) without an intermediate absence.
    fn replace_row(&mut self, replica: &ReplicaRef, m: u64, n: u64, row: SharedRow) {
        if let Some(rows) = self.values.get_mut(replica) {
            rows.rows.remove(&m);
        }
        if *replica == self.me {
            self.owners.remove(&(row.owner, m));
        }
        // The index entry holds the old row: take it out, so that the new one is stored.
        if let Some(t) = self.topics.get_mut(&row.topic) {
            t.remove(&probe(replica, &row) as &dyn RowId);
        }
        self.insert_row(replica, n, row);
    }

    fn remove_row(&mut self, replica: &ReplicaRef, n: u64) -> Option<SharedRow> {
        let rows = self.values.get_mut(replica)?;
        let row = rows.rows.remove(&n)?;
        if rows.rows.is_empty() {
            self.values.remove(replica);
        }
        if let Some(t) = self.topics.get_mut(&row.topic) {
            t.remove(&probe(replica, &row) as &dyn RowId);
            if t.is_empty() {
                self.topics.remove(&row.topic);
            }
        }
        if *replica == self.me {
            self.owners.remove(&(row.owner, n));
        }
        Some(row)
    }

    // ----- merge -------------------------------------------------------------------------------

    /// Joins a remote payload into this state and returns what became visible or invisible.
    /// Idempotent: merging the same payload again returns an empty diff and changes nothing.
    pub fn merge(&mut self, payload: Payload) -> Diff {
        match payload {
            Payload::Delta(d) => self.merge_delta(d),
            Payload::Full(f) => self.merge_full(f),
        }
    }

    /// Merges a delta. Cost is proportional to the delta, not to the state.
    pub fn merge_delta(&mut self, mut d: Delta) -> Diff {
        let mut diff = Diff::default();
        let mut kept: BTreeMap<ReplicaRef, BTreeMap<u64, ()>> = BTreeMap::new();
        for (r, vals) in std::mem::take(&mut d.values) {
            if !self.accepts(&r) {
                continue;
            }
            let held = self.values.get(&r).is_some_and(|v| !v.rows.is_empty());
            let mut dots = std::collections::BTreeMap::new();
            for (n, row) in vals {
                if !self.seen(&r, n) {
                    self.admit(&r, n, row, &mut diff, held);
                }
                dots.insert(n, ());
            }
            kept.insert(r, dots);
        }
        for (r, dots) in &d.clouds {
            if !self.accepts(r) {
                continue;
            }
            let held = kept.get(r);
            for n in dots {
                if !held.is_some_and(|h| h.contains_key(n)) {
                    self.observe_remove(r, *n, &mut diff);
                }
            }
            self.union_cloud(r, dots.iter().copied());
        }
        diff
    }

    /// Merges a full state. Removes are found by scanning our rows of the replicas it describes.
    pub fn merge_full(&mut self, mut f: FullState) -> Diff {
        let mut diff = Diff::default();
        // Removes first (they need the payload's dots), then admissions consume the rows.
        self.observe_full_removes(&f, &mut diff);
        for (r, vals) in std::mem::take(&mut f.values) {
            if !self.accepts(&r) {
                continue;
            }
            let held = self.values.get(&r).is_some_and(|v| !v.rows.is_empty());
            let fresh = vals.iter().filter(|(n, _)| !self.seen(&r, *n)).count();
            self.values
                .entry(r.clone())
                .or_insert_with(|| Rows::new(&r))
                .rows
                .reserve(fresh);
            for (n, row) in vals {
                if !self.seen(&r, n) {
                    self.admit(&r, n, row, &mut diff, held);
                }
            }
        }
        let known: Vec<ReplicaRef> = self
            .context
            .keys()
            .filter(|r| **r != self.me)
            .cloned()
            .collect();
        for r in known {
            if let Some(c) = f.context.get(&r) {
                let e = self.context.entry(r.clone()).or_insert(0);
                *e = (*e).max(*c);
            }
            let cloud = f
                .clouds
                .get(&r)
                .map(|c| c.iter().copied().collect::<Vec<_>>());
            self.union_cloud(&r, cloud.unwrap_or_default());
        }
        diff
    }

    fn observe_full_removes(&mut self, f: &FullState, diff: &mut Diff) {
        let ours = |r: &ReplicaRef| *r != self.me && self.values.contains_key(r);
        if !f.values.iter().any(|(r, _)| ours(r))
            && !self
                .values
                .keys()
                .any(|r| ours(r) && f.context.contains_key(r))
        {
            return;
        }
        let held: HashMap<&ReplicaRef, HashSet<u64>> = f
            .values
            .iter()
            .map(|(r, v)| (r, v.iter().map(|(n, _)| *n).collect()))
            .collect();
        let candidates: Vec<(ReplicaRef, u64)> = self
            .values
            .iter()
            .filter(|(r, _)| **r != self.me)
            .flat_map(|(r, rows)| rows.rows.keys().map(move |n| (r.clone(), *n)))
            .filter(|(r, n)| f.covers(r, *n) && !held.get(r).is_some_and(|h| h.contains(n)))
            .collect();
        for (r, n) in candidates {
            self.observe_remove(&r, n, diff);
        }
    }

    /// Values and removes are taken only from replicas in our context (never-upped and
    /// permdowned replicas are ignored: the anti-zombie rule), and never about ourselves.
    fn accepts(&self, replica: &ReplicaRef) -> bool {
        *replica != self.me && self.context.contains_key(replica)
    }

    /// `may_exist` is false when we held no row of `r` before this merge: then no older
    /// version of the row can exist, and a catch-up transfer skips the index lookup.
    fn admit(&mut self, r: &ReplicaRef, n: u64, row: SharedRow, diff: &mut Diff, may_exist: bool) {
        let existing = if may_exist {
            self.topics
                .get(&row.topic)
                .and_then(|t| t.get(&probe(r, &row) as &dyn RowId))
                .copied()
        } else {
            None
        };
        let visible = self.visible(r);
        match existing {
            Some(m) if m > n => {} // stale: the origin removed it before making `m` (#148)
            Some(m) => {
                let old = self.lookup(r, m).map(|row| Self::presence(r, m, row));
                let new = Self::presence(r, n, &row);
                self.replace_row(r, m, n, row);
                self.delta.cover(r, m);
                self.delta.drop_value(r, m);
                if visible {
                    diff.leaves.extend(old);
                    diff.joins.push(new);
                }
            }
            None => {
                if visible {
                    diff.joins.push(Self::presence(r, n, &row));
                }
                self.insert_row(r, n, row);
            }
        }
    }

    /// The sender saw `(r, n)` and does not hold it: it was removed. Re-gossip the remove.
    fn observe_remove(&mut self, r: &ReplicaRef, n: u64, diff: &mut Diff) {
        if let Some(row) = self.remove_row(r, n) {
            self.delta.cover(r, n);
            self.delta.drop_value(r, n);
            if self.visible(r) {
                diff.leaves.push(Self::presence(r, n, &row));
            }
        }
    }

    fn union_cloud(&mut self, r: &ReplicaRef, dots: impl IntoIterator<Item = u64>) {
        let base = self.context.get(r).copied().unwrap_or(0);
        let cloud = self.clouds.entry(r.clone()).or_default();
        cloud.extend(dots.into_iter().filter(|n| *n > base));
        self.compact_one(r);
    }

    /// Folds the contiguous prefix of a replica's cloud into its context.
    fn compact_one(&mut self, r: &ReplicaRef) {
        let Some(ctx) = self.context.get_mut(r) else {
            return;
        };
        let Some(cloud) = self.clouds.get_mut(r) else {
            return;
        };
        while let Some(first) = cloud.first().copied() {
            if first > *ctx + 1 {
                break;
            }
            *ctx = (*ctx).max(first);
            cloud.remove(&first);
        }
        if cloud.is_empty() {
            self.clouds.remove(r);
        }
    }

    /// Compacts every cloud.
    pub fn compact(&mut self) {
        let rs: Vec<ReplicaRef> = self.clouds.keys().cloned().collect();
        for r in rs {
            self.compact_one(&r);
        }
    }

    // ----- extract -----------------------------------------------------------------------------

    /// The full state for a receiver whose context is `remote_ctx`: only replicas it knows, and
    /// not its own rows (it has them).
    pub fn extract(&self, remote: &ReplicaRef, remote_ctx: &Ctx) -> FullState {
        let known = |r: &ReplicaRef| remote_ctx.contains_key(r);
        let context = self
            .context
            .iter()
            .filter(|(r, _)| known(r))
            .map(|(r, v)| (r.clone(), *v))
            .collect();
        let clouds = self
            .clouds
            .iter()
            .filter(|(r, _)| known(r))
            .map(|(r, c)| (r.clone(), c.clone()))
            .collect();
        let values = self
            .values
            .iter()
            .filter(|(r, _)| known(r) && *r != remote)
            .map(|(r, rows)| {
                (
                    r.clone(),
                    rows.rows.iter().map(|(n, row)| (*n, row.clone())).collect(),
                )
            })
            .collect();
        FullState {
            context,
            clouds,
            values,
        }
    }

    // ----- replica visibility ------------------------------------------------------------------

    /// Marks a replica up (adding it to the context if new) and returns joins for its rows.
    pub fn replica_up(&mut self, r: &ReplicaRef) -> Diff {
        self.context.entry(r.clone()).or_insert(0);
        if self.status.insert(r.clone(), Status::Up) == Some(Status::Up) {
            return Diff::default();
        }
        Diff {
            joins: self.rows_of(r),
            leaves: vec![],
        }
    }

    /// Hides a replica's rows (kept for a possible return) and returns leaves for them.
    pub fn replica_down(&mut self, r: &ReplicaRef) -> Diff {
        if *r == self.me || self.status.get(r) != Some(&Status::Up) {
            return Diff::default();
        }
        self.status.insert(r.clone(), Status::Down);
        Diff {
            joins: vec![],
            leaves: self.rows_of(r),
        }
    }

    /// Forgets a replica entirely: context, clouds, rows, visibility entry (#179) and its part of
    /// the delta. Returns leaves only if it was still up (normally it is downed first).
    pub fn remove_down_replicas(&mut self, r: &ReplicaRef) -> Diff {
        if *r == self.me {
            return Diff::default();
        }
        let diff = self.replica_down(r);
        self.context.remove(r);
        self.clouds.remove(r);
        self.status.remove(r);
        self.delta.prune(r);
        if let Some(rows) = self.values.remove(r) {
            for row in rows.rows.into_values() {
                if let Some(t) = self.topics.get_mut(&row.topic) {
                    t.remove(&probe(r, &row) as &dyn RowId);
                    if t.is_empty() {
                        self.topics.remove(&row.topic);
                    }
                }
            }
        }
        diff
    }

    /// Estimated heap bytes held, from capacities and entry sizes (see [`super::memory`]).
    pub fn heap_bytes(&self) -> usize {
        use super::memory::{btree, hash_table, malloc_chunk, row, string};
        use std::mem::size_of;
        let mut total = hash_table(self.values.capacity(), size_of::<(ReplicaRef, Rows)>());
        for rows in self.values.values() {
            total += malloc_chunk(16 + size_of::<ReplicaRef>());
            total += hash_table(rows.rows.capacity(), size_of::<(u64, SharedRow)>());
            total += rows.rows.values().map(row).sum::<usize>();
        }
        total += hash_table(self.topics.capacity(), size_of::<(String, TopicIndex)>());
        for (t, rows) in &self.topics {
            total += string(t) + btree(rows.len(), size_of::<(IndexKey, u64)>());
        }
        total += btree(self.owners.len(), size_of::<(Owner, u64)>());
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The topic index holds the row itself, not a copy of its key: after an update (local, or
    /// merged from the replica that made it) every read shows the new version, the old one is
    /// released, and a lookup by key still finds the row.
    #[test]
    fn the_index_holds_the_newest_version_of_a_row_and_lets_the_old_one_go() {
        let (a_ref, b_ref) = (ReplicaRef::new("a", 1), ReplicaRef::new("b", 1));
        let mut a = State::new(a_ref.clone());
        let mut b = State::new(b_ref.clone());
        b.replica_up(&a_ref);
        a.track(Owner(1), "room", "alice", b"v1".to_vec()).unwrap();
        a.track(Owner(2), "room", "bob", b"b1".to_vec()).unwrap();
        b.merge_delta(a.reset_delta());
        let old = a.get(Owner(1), "room", "alice").unwrap().row;
        a.update(Owner(1), "room", "alice", |_| b"v2".to_vec())
            .unwrap();
        let diff = b.merge_delta(a.reset_delta());
        assert_eq!((diff.joins.len(), diff.leaves.len()), (1, 1));
        drop(diff);
        for s in [&a, &b] {
            let alice = s.get_by_key("room", "alice");
            assert_eq!(alice.len(), 1);
            assert_eq!(alice[0].row.meta, b"v2".to_vec());
            let metas: Vec<_> = s.list("room").iter().map(|p| p.row.meta.clone()).collect();
            assert_eq!(metas, vec![b"v2".to_vec(), b"b1".to_vec()]);
            assert_eq!(s.get_by_key("room", "carol"), vec![]);
        }
        assert_eq!(a.get(Owner(1), "room", "alice").unwrap().row.meta, b"v2");
        // Only this test's handle still holds the first version: neither state keeps it.
        assert_eq!(old.holders(), 1);
        // Untracking removes it from the index too.
        a.untrack(Owner(1), "room", "alice");
        b.merge_delta(a.reset_delta());
        for s in [&a, &b] {
            assert!(s.get_by_key("room", "alice").is_empty());
            assert_eq!(s.list("room").len(), 1);
        }
    }
}
