//! Rolodex changes as a pure function: old entry and a change in, new entry (or a refusal) out.

use crate::identity::FeedId;
use crate::limits::NAME_BYTES_MAX;
use crate::rolodex::RolodexEntry;

/// A change a user (or the node) asks of one rolodex entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolodexChange {
    /// Replicate them; optionally remember where to dial them.
    Follow {
        /// A `host:port` hint.
        addr: Option<String>,
    },
    /// Stop replicating them.
    Unfollow,
    /// Refuse them everything (local only).
    Block,
    /// Lift a block.
    Unblock,
    /// Give them a local name.
    Petname(Option<String>),
    /// They were connected at this time.
    Seen(u64),
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolodexError {
    /// You cannot follow, block or name yourself.
    #[error("that is your own id; your own feed is always replicated")]
    SelfChange,
    /// Following a blocked id makes no sense.
    #[error("{0} is blocked; run `kith unblock {0}` first")]
    Blocked(FeedId),
    /// An address hint is not `host:port`.
    #[error("`{0}` is not an address: expected HOST:PORT, e.g. 192.0.2.7:8008")]
    BadAddress(String),
    /// A petname is too long.
    #[error("a petname may be at most {NAME_BYTES_MAX} bytes")]
    PetnameTooLong,
    /// Too many feeds are followed.
    #[error("this node already follows {0} feeds, the most it replicates; unfollow someone first")]
    TooManyFollows(usize),
    /// The table is full.
    #[error("the rolodex holds its maximum of {0} entries; unfollow someone first")]
    Full(usize),
}

/// Apply `change` to the entry for `id` (or a fresh one), as seen by node `me`.
pub fn apply(
    me: &FeedId,
    id: &FeedId,
    old: Option<RolodexEntry>,
    change: &RolodexChange,
) -> Result<RolodexEntry, RolodexError> {
    if id == me && !matches!(change, RolodexChange::Seen(_)) {
        return Err(RolodexError::SelfChange);
    }
    let mut entry = old.unwrap_or_else(|| RolodexEntry::new(*id));
    match change {
        RolodexChange::Follow { .. } if entry.blocked => return Err(RolodexError::Blocked(*id)),
        RolodexChange::Follow { addr } => {
            if let Some(addr) = addr {
                check_address(addr)?;
                entry.add_address(addr);
            }
            entry.following = true;
        }
        RolodexChange::Unfollow => entry.following = false,
        RolodexChange::Block => {
            entry.blocked = true;
            entry.following = false;
        }
        RolodexChange::Unblock => entry.blocked = false,
        RolodexChange::Petname(Some(name)) if name.len() > NAME_BYTES_MAX => {
            return Err(RolodexError::PetnameTooLong)
        }
        RolodexChange::Petname(name) => entry.petname = name.clone(),
        RolodexChange::Seen(at) => entry.last_seen_ms = Some(*at),
    }
    Ok(entry)
}

fn check_address(addr: &str) -> Result<(), RolodexError> {
    let bad = || RolodexError::BadAddress(addr.to_string());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: FeedId = FeedId([1; 32]);
    const THEM: FeedId = FeedId([2; 32]);

    #[test]
    fn follow_then_block_then_follow_is_refused() {
        let e = apply(
            &ME,
            &THEM,
            None,
            &RolodexChange::Follow {
                addr: Some("10.0.0.1:8008".into()),
            },
        )
        .unwrap();
        assert!(e.following && e.addrs == vec!["10.0.0.1:8008".to_string()]);
        let e = apply(&ME, &THEM, Some(e), &RolodexChange::Block).unwrap();
        assert!(e.blocked && !e.following);
        let refused = apply(
            &ME,
            &THEM,
            Some(e.clone()),
            &RolodexChange::Follow { addr: None },
        );
        assert_eq!(refused, Err(RolodexError::Blocked(THEM)));
        let e = apply(&ME, &THEM, Some(e), &RolodexChange::Unblock).unwrap();
        assert!(!e.blocked && !e.following);
    }

    #[test]
    fn self_changes_and_bad_addresses_are_refused() {
        assert_eq!(
            apply(&ME, &ME, None, &RolodexChange::Block),
            Err(RolodexError::SelfChange)
        );
        for bad in ["nohost", ":80", "host:", "host:0", "host:99999"] {
            let change = RolodexChange::Follow {
                addr: Some(bad.into()),
            };
            assert!(
                matches!(
                    apply(&ME, &THEM, None, &change),
                    Err(RolodexError::BadAddress(_))
                ),
                "{bad}"
            );
        }
    }
}
