//! The concurrently readable view of one shard's visible presences.
//!
//! The shard actor folds every diff into this view; readers call [`ShardView::list`] from any
//! thread without messaging the actor (Phoenix reads ETS the same way). A diff touching a topic
//! is applied under that topic's lock, leaves then joins, so an update (a leave and a join of
//! the same row in one diff) never shows the row missing (#172).

use std::collections::BTreeMap;

use dashmap::DashMap;

use crate::presence::types::{Diff, Owner, Presence, ReplicaRef};

type TopicRows = BTreeMap<(String, ReplicaRef, Owner), Presence>;

/// Visible presences of one shard, by topic.
#[derive(Default, Debug)]
pub struct ShardView {
    topics: DashMap<String, TopicRows>,
}

impl ShardView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (a new shard incarnation starts empty).
    pub fn clear(&self) {
        self.topics.clear();
    }

    /// Folds a diff in, one topic at a time, atomically per topic.
    pub fn apply(&self, diff: &Diff) {
        let mut by_topic: BTreeMap<&str, (Vec<&Presence>, Vec<&Presence>)> = BTreeMap::new();
        for p in &diff.leaves {
            by_topic.entry(p.topic()).or_default().0.push(p);
        }
        for p in &diff.joins {
            by_topic.entry(p.topic()).or_default().1.push(p);
        }
        for (topic, (leaves, joins)) in by_topic {
            let mut rows = self.topics.entry(topic.to_string()).or_default();
            for p in leaves {
                let k = (p.row.key.clone(), p.dot.replica.clone(), p.row.owner);
                if rows.get(&k).is_some_and(|cur| cur.dot == p.dot) {
                    rows.remove(&k);
                }
            }
            for p in joins {
                rows.insert(
                    (p.row.key.clone(), p.dot.replica.clone(), p.row.owner),
                    p.clone(),
                );
            }
            let empty = rows.is_empty();
            drop(rows);
            if empty {
                self.topics.remove_if(topic, |_, r| r.is_empty());
            }
        }
    }

    /// Visible presences of a topic, ordered by key.
    pub fn list(&self, topic: &str) -> Vec<Presence> {
        self.topics
            .get(topic)
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Visible presences of one key of a topic.
    pub fn get_by_key(&self, topic: &str, key: &str) -> Vec<Presence> {
        let Some(rows) = self.topics.get(topic) else {
            return Vec::new();
        };
        // Rows are ordered by key first, and ("", 0) and 0 are the least replica and owner: a
        // range from there reads only this key's rows (a scan of the topic made every watch and
        // join cost as much as the number of clients online).
        let from = (key.to_string(), ReplicaRef::new("", 0), Owner(0));
        rows.range(from..)
            .take_while(|((k, _, _), _)| k == key)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Number of visible presences.
    pub fn len(&self) -> usize {
        self.topics.iter().map(|r| r.len()).sum()
    }

    /// True when nothing is visible.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::types::{Dot, Row};

    fn presence(key: &str, replica: &str, owner: u64) -> Presence {
        let row = Row {
            topic: "peers".into(),
            key: key.into(),
            owner: Owner(owner),
            meta: Vec::new(),
        };
        Presence {
            row: row.into(),
            dot: Dot {
                replica: ReplicaRef::new(replica, 1),
                clock: owner,
            },
        }
    }

    #[test]
    fn get_by_key_reads_every_row_of_that_key_and_no_other() {
        let view = ShardView::new();
        let joins = vec![
            presence("a", "n2", 1),
            presence("a", "", 2),
            presence("ab", "n1", 3),
            presence("b", "n1", 4),
            presence("a", "n1", 5),
            presence("", "n1", 6),
        ];
        view.apply(&Diff {
            joins,
            leaves: Vec::new(),
        });
        let owners = |key: &str| {
            let mut o: Vec<u64> = view
                .get_by_key("peers", key)
                .iter()
                .map(|p| p.row.owner.0)
                .collect();
            o.sort_unstable();
            o
        };
        assert_eq!(owners("a"), vec![1, 2, 5]);
        assert_eq!(owners("ab"), vec![3]);
        assert_eq!(owners(""), vec![6]);
        assert_eq!(owners("c"), Vec::<u64>::new());
        assert!(view.get_by_key("other", "a").is_empty());
    }
}
