//! How a daemon names a switchboard: `[@ID@]HOST:PORT[#INVITE]` ([`Target`]), or a cluster of
//! them: `ITEM[,ITEM…][#INVITE]` ([`Cluster`]).
//!
//! With `@ID` the switchboard must prove that key; without it the key is learned on first use and
//! then remembered (the daemon stores the target with the key), as SSH does with known hosts.
//!
//! A cluster's items are its members, `[@ID@]HOST:PORT`, and bare keys, `@ID`: a `HOST:PORT`
//! given without its own key (a DNS name that resolves to every node, say) must prove one of the
//! bare keys — `sb.example.org:7878,@K1,@K2,@K3` — and only with no key given anywhere is its key
//! learned on first use. The daemon keeps one link to the cluster and moves between its members
//! ([`crate::daemon::uplink::retry`]).

use std::collections::BTreeSet;

use crate::identity::{FeedId, IdentityError};
use crate::limits::SB_CLUSTER_ITEMS_MAX;

/// Why a text is not a switchboard target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The `@ID` part is not an id.
    #[error(transparent)]
    BadId(#[from] IdentityError),
    /// The text has no `HOST:PORT`.
    #[error("`{0}` is not a switchboard: expected [@ID@]HOST:PORT[#INVITE]")]
    NotASwitchboard(String),
    /// A cluster lists more members than the bound.
    #[error("a switchboard cluster lists at most {SB_CLUSTER_ITEMS_MAX} members and keys")]
    TooManyMembers,
    /// A cluster lists keys but no address.
    #[error("`{0}` names no switchboard address: expected ITEM[,ITEM…][#INVITE], each item [@ID@]HOST:PORT or @ID")]
    NoAddress(String),
}

/// A parsed switchboard target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The pinned key, if known.
    pub id: Option<FeedId>,
    /// `HOST:PORT`.
    pub host: String,
    /// An invite code for an invite-only switchboard.
    pub invite: Option<String>,
}

impl Target {
    /// Parse `[@ID@]HOST:PORT[#INVITE]`.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let (rest, invite) = match text.split_once('#') {
            Some((rest, code)) if !code.is_empty() => (rest, Some(code.to_string())),
            Some((rest, _)) => (rest, None),
            None => (text, None),
        };
        let (id, host) = match rest.rsplit_once('@') {
            Some((id, host)) if id.starts_with('@') => (Some(id.parse::<FeedId>()?), host),
            _ => (None, rest),
        };
        if !host.contains(':') {
            return Err(TargetError::NotASwitchboard(text.to_string()));
        }
        Ok(Target {
            id,
            host: host.to_string(),
            invite,
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(id) = &self.id {
            out.push_str(&format!("{id}@"));
        }
        out.push_str(&self.host);
        if let Some(code) = &self.invite {
            out.push_str(&format!("#{code}"));
        }
        out
    }

    /// Merge what the user gave with what was remembered for the same host: a remembered key
    /// stays pinned unless the user pins one, and the newest invite wins.
    pub fn merge(given: Target, remembered: Option<Target>) -> Target {
        let Some(old) = remembered else { return given };
        Target {
            id: given.id.or(old.id),
            host: given.host,
            invite: given.invite.or(old.invite),
        }
    }
}

/// One member of a switchboard cluster: an address, with the key it must prove if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's own pinned key, if given or learned.
    pub id: Option<FeedId>,
    /// `HOST:PORT` (a name may resolve to several nodes).
    pub host: String,
}

/// Which key an address of a member must prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRule {
    /// This key (the member's own).
    Pinned(FeedId),
    /// Any of the cluster's bare keys (learned by a probe, then checked).
    AnyOf(BTreeSet<FeedId>),
    /// Any key, learned on first use and pinned to the member (no key given anywhere).
    Learn,
}

/// A switchboard cluster as a daemon's `--switchboard` names it: its members, the keys its
/// unkeyed members may prove, and an invite code for all of them. A single `[@ID@]HOST:PORT`
/// is a cluster of one whose text and store key are those of a [`Target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// The members, in the order given (dialled first to last).
    pub members: Vec<Member>,
    /// Keys given alone (`@ID`): what an unkeyed member must prove.
    pub keys: Vec<FeedId>,
    /// An invite code for an invite-only cluster.
    pub invite: Option<String>,
}

impl Cluster {
    /// Parse `ITEM[,ITEM…][#INVITE]`, each item `[@ID@]HOST:PORT` or `@ID`.
    pub fn parse(text: &str) -> Result<Cluster, TargetError> {
        let (rest, invite) = match text.split_once('#') {
            Some((rest, code)) if !code.is_empty() => (rest, Some(code.to_string())),
            Some((rest, _)) => (rest, None),
            None => (text, None),
        };
        let items: Vec<&str> = rest
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        if items.len() > SB_CLUSTER_ITEMS_MAX {
            return Err(TargetError::TooManyMembers);
        }
        let mut members: Vec<Member> = Vec::new();
        let mut keys: Vec<FeedId> = Vec::new();
        for item in items {
            if item.starts_with('@') && !item[1..].contains('@') {
                let id = item.parse::<FeedId>()?;
                if !keys.contains(&id) {
                    keys.push(id);
                }
                continue;
            }
            let target = Target::parse(item).map_err(|e| match e {
                TargetError::NotASwitchboard(_) => TargetError::NotASwitchboard(text.to_string()),
                other => other,
            })?;
            if !members.iter().any(|m| m.host == target.host) {
                members.push(Member {
                    id: target.id,
                    host: target.host,
                });
            }
        }
        if members.is_empty() {
            return Err(TargetError::NoAddress(text.to_string()));
        }
        Ok(Cluster {
            members,
            keys,
            invite,
        })
    }

    /// The text form (parses back to the same cluster).
    pub fn to_text(&self) -> String {
        let mut items: Vec<String> = self
            .members
            .iter()
            .map(|m| match &m.id {
                Some(id) => format!("{id}@{}", m.host),
                None => m.host.clone(),
            })
            .collect();
        items.extend(self.keys.iter().map(|k| k.to_string()));
        let mut out = items.join(",");
        if let Some(code) = &self.invite {
            out.push_str(&format!("#{code}"));
        }
        out
    }

    /// The name it is remembered under: its members' `HOST:PORT`s, comma-separated (for a cluster
    /// of one, its `HOST:PORT`, as a [`Target`] is remembered).
    pub fn key(&self) -> String {
        let hosts: Vec<&str> = self.members.iter().map(|m| m.host.as_str()).collect();
        hosts.join(",")
    }

    /// Which key the addresses of member `index` must prove.
    pub fn rule(&self, index: usize) -> KeyRule {
        match self.members.get(index).and_then(|m| m.id) {
            Some(id) => KeyRule::Pinned(id),
            None if !self.keys.is_empty() => KeyRule::AnyOf(self.keys.iter().copied().collect()),
            None => KeyRule::Learn,
        }
    }

    /// Every key this cluster knows: the members' own and the bare ones.
    pub fn known_keys(&self) -> Vec<FeedId> {
        let mut out: Vec<FeedId> = self.members.iter().filter_map(|m| m.id).collect();
        for k in &self.keys {
            if !out.contains(k) {
                out.push(*k);
            }
        }
        out
    }

    /// Merge what the user gave with what was remembered for the same cluster: a member's
    /// remembered key stays pinned unless the user pins one, remembered bare keys are kept, and
    /// the newest invite wins.
    pub fn merge(given: Cluster, remembered: Option<Cluster>) -> Cluster {
        let Some(old) = remembered else { return given };
        let members = given
            .members
            .into_iter()
            .map(|m| {
                let kept = old
                    .members
                    .iter()
                    .find(|o| o.host == m.host)
                    .and_then(|o| o.id);
                Member {
                    id: m.id.or(kept),
                    host: m.host,
                }
            })
            .collect();
        let mut keys = given.keys;
        for k in old.keys {
            if !keys.contains(&k) && keys.len() < SB_CLUSTER_ITEMS_MAX {
                keys.push(k);
            }
        }
        Cluster {
            members,
            keys,
            invite: given.invite.or(old.invite),
        }
    }
}

/// The switchboards (or clusters) to link to: those `given` (flags or config), each merged with
/// the one remembered under the same name (a remembered key stays pinned), then the remembered
/// ones not given again. `remembered` is the store's list of (name, text); entries that no longer
/// parse are skipped. Returns the texts, or the first given one that does not parse.
pub fn merge_targets(
    given: &[String],
    remembered: &[(String, String)],
) -> Result<Vec<String>, TargetError> {
    let mut old: std::collections::BTreeMap<String, Cluster> = remembered
        .iter()
        .filter_map(|(name, text)| Cluster::parse(text).ok().map(|c| (name.clone(), c)))
        .collect();
    let mut out = Vec::new();
    for text in given {
        let cluster = Cluster::parse(text)?;
        let merged = Cluster::merge(cluster.clone(), old.remove(&cluster.key()));
        out.push(merged.to_text());
    }
    out.extend(old.into_values().map(|c| c.to_text()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        let id = crate::identity::Identity::from_seed([4; 32]).id();
        for text in [
            "sb.example.org:7878".to_string(),
            format!("{id}@10.0.0.1:7878"),
            format!("{id}@h:1#CODE"),
        ] {
            assert_eq!(Target::parse(&text).unwrap().to_text(), text);
        }
        assert!(Target::parse("nohost").is_err());
        let merged = Target::merge(
            Target::parse("h:1").unwrap(),
            Some(Target::parse(&format!("{id}@h:1")).unwrap()),
        );
        assert_eq!(merged.id, Some(id));
    }

    #[test]
    fn clusters_parse_print_back_and_say_which_key_each_member_proves() {
        let (k1, k2) = (
            crate::identity::Identity::from_seed([5; 32]).id(),
            crate::identity::Identity::from_seed([6; 32]).id(),
        );
        // A single switchboard is a cluster of one with a Target's text and name.
        let one = Cluster::parse(&format!("{k1}@h:1#CODE")).unwrap();
        assert_eq!(one.to_text(), format!("{k1}@h:1#CODE"));
        assert_eq!(one.key(), "h:1");
        assert_eq!(one.rule(0), KeyRule::Pinned(k1));
        assert_eq!(Cluster::parse("h:1").unwrap().rule(0), KeyRule::Learn);
        // Members with their keys, and a name with bare keys.
        let text = format!("{k1}@a:1,b:2,{k2}");
        let c = Cluster::parse(&text).unwrap();
        assert_eq!(c.to_text(), text);
        assert_eq!(c.key(), "a:1,b:2");
        assert_eq!(c.rule(0), KeyRule::Pinned(k1));
        assert_eq!(c.rule(1), KeyRule::AnyOf([k2].into_iter().collect()));
        assert_eq!(c.known_keys(), vec![k1, k2]);
        // Spaces and repeats are tolerated; keys alone, junk and too many items are refused.
        let spaced = Cluster::parse(&format!(" a:1 , a:1, {k2} ,{k2}")).unwrap();
        assert_eq!(spaced.members.len(), 1);
        assert_eq!(spaced.keys, vec![k2]);
        assert!(matches!(
            Cluster::parse(&format!("{k1},{k2}")),
            Err(TargetError::NoAddress(_))
        ));
        assert!(Cluster::parse("a:1,nohost").is_err());
        assert!(Cluster::parse("a:1,@junk").is_err());
        let many: Vec<String> = (0..=SB_CLUSTER_ITEMS_MAX)
            .map(|i| format!("h{i}:1"))
            .collect();
        assert!(matches!(
            Cluster::parse(&many.join(",")),
            Err(TargetError::TooManyMembers)
        ));
    }

    #[test]
    fn remembered_keys_stay_pinned_when_a_cluster_is_given_again() {
        let k1 = crate::identity::Identity::from_seed([5; 32]).id();
        let k3 = crate::identity::Identity::from_seed([7; 32]).id();
        let remembered = vec![
            ("a:1,b:2".to_string(), format!("{k1}@a:1,b:2,{k3}#OLD")),
            ("z:9".to_string(), "z:9".to_string()),
            ("bad".to_string(), "not a target".to_string()),
        ];
        let merged = merge_targets(&["a:1,b:2".to_string()], &remembered).unwrap();
        assert_eq!(
            merged,
            vec![format!("{k1}@a:1,b:2,{k3}#OLD"), "z:9".to_string()]
        );
        assert!(merge_targets(&["a:1,@bad".to_string()], &remembered).is_err());
    }
}
