//! How a daemon names a switchboard: `[@ID@]HOST:PORT[#INVITE]`.
//!
//! With `@ID` the switchboard must prove that key; without it the key is learned on first use and
//! then remembered (the daemon stores the target with the key), as SSH does with known hosts.

use crate::identity::{FeedId, IdentityError};

/// Why a text is not a switchboard target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The `@ID` part is not an id.
    #[error(transparent)]
    BadId(#[from] IdentityError),
    /// The text has no `HOST:PORT`.
    #[error("`{0}` is not a switchboard: expected [@ID@]HOST:PORT[#INVITE]")]
    NotASwitchboard(String),
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
}
