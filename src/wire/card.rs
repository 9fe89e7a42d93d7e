//! The contact card: one `kith:` string that tells a friend how to reach this node.
//!
//! `kith:@<id>.ed25519?addr=HOST:PORT&addr=…&sb=@<sb id>.ed25519@HOST:PORT&…`: the node's id,
//! the addresses it may be dialled at (its listen address, the address a switchboard sees it
//! at), and its switchboards with their pinned keys (a switchboard is only named with its key, so
//! that following a card pins it and nobody on the path can pose as it). Invite codes are never
//! put in a card. Everything in a card is untrusted input: it is bounded ([`CARD_BYTES_MAX`],
//! [`CARD_ADDRS_MAX`], [`CARD_SWITCHBOARDS_MAX`]) and each part is checked by name.

use crate::identity::FeedId;
use crate::limits::{CARD_ADDRS_MAX, CARD_BYTES_MAX, CARD_SWITCHBOARDS_MAX};

/// The URI scheme.
pub const CARD_SCHEME: &str = "kith:";

/// A contact card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// The node's id.
    pub id: FeedId,
    /// `HOST:PORT` addresses to dial it at, best first.
    pub addrs: Vec<String>,
    /// Its switchboards, each `@ID@HOST:PORT`.
    pub switchboards: Vec<String>,
}

/// Why a card was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// It does not start with `kith:`.
    #[error("not a contact card: it should start with `kith:@`")]
    NotACard,
    /// It is longer than any card this node makes.
    #[error("the card is {0} bytes; a card is at most {CARD_BYTES_MAX}")]
    TooLong(usize),
    /// The id is not a valid feed id.
    #[error("the card's id is not valid: {0}")]
    BadId(String),
    /// A `key=value` part is malformed or unknown.
    #[error("the card's part `{0}` is not addr=HOST:PORT or sb=@ID@HOST:PORT")]
    BadPart(String),
    /// An address is not `HOST:PORT`.
    #[error("the card's address `{0}` is not HOST:PORT")]
    BadAddress(String),
    /// A switchboard is not `@ID@HOST:PORT` with a valid id.
    #[error("the card's switchboard `{0}` is not @ID@HOST:PORT")]
    BadSwitchboard(String),
    /// Too many addresses or switchboards.
    #[error("the card lists more than {0} {1}")]
    TooMany(usize, &'static str),
}

fn host_port(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(['@', '#', '&', '?', '/', ' '])
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        }
        None => false,
    }
}

impl Card {
    /// The card as one string.
    pub fn to_text(&self) -> String {
        let mut out = format!("{CARD_SCHEME}{}", self.id);
        let mut sep = '?';
        for a in &self.addrs {
            out.push_str(&format!("{sep}addr={a}"));
            sep = '&';
        }
        for s in &self.switchboards {
            out.push_str(&format!("{sep}sb={s}"));
            sep = '&';
        }
        out
    }

    /// Read a card, checking every part.
    pub fn parse(text: &str) -> Result<Card, CardError> {
        let text = text.trim();
        if text.len() > CARD_BYTES_MAX {
            return Err(CardError::TooLong(text.len()));
        }
        let rest = text.strip_prefix(CARD_SCHEME).ok_or(CardError::NotACard)?;
        let (id, query) = rest.split_once('?').unwrap_or((rest, ""));
        let id: FeedId = id
            .parse()
            .map_err(|e: crate::identity::IdentityError| CardError::BadId(e.to_string()))?;
        let mut card = Card {
            id,
            addrs: Vec::new(),
            switchboards: Vec::new(),
        };
        for part in query.split('&').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("addr", a)) if host_port(a) => {
                    if card.addrs.len() == CARD_ADDRS_MAX {
                        return Err(CardError::TooMany(CARD_ADDRS_MAX, "addresses"));
                    }
                    if !card.addrs.iter().any(|x| x == a) {
                        card.addrs.push(a.to_string());
                    }
                }
                Some(("addr", a)) => return Err(CardError::BadAddress(a.to_string())),
                Some(("sb", s)) => {
                    let ok = s
                        .strip_prefix('@')
                        .and_then(|r| r.split_once(".ed25519@"))
                        .is_some_and(|(key, host)| {
                            format!("@{key}.ed25519").parse::<FeedId>().is_ok() && host_port(host)
                        });
                    if !ok {
                        return Err(CardError::BadSwitchboard(s.to_string()));
                    }
                    if card.switchboards.len() == CARD_SWITCHBOARDS_MAX {
                        return Err(CardError::TooMany(CARD_SWITCHBOARDS_MAX, "switchboards"));
                    }
                    if !card.switchboards.iter().any(|x| x == s) {
                        card.switchboards.push(s.to_string());
                    }
                }
                _ => return Err(CardError::BadPart(part.chars().take(80).collect())),
            }
        }
        Ok(card)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_round_trips() {
        let sb = crate::identity::Identity::generate().id();
        let id = crate::identity::Identity::generate().id();
        let card = Card {
            id,
            addrs: vec!["192.0.2.7:8009".into(), "[2001:db8::1]:8009".into()],
            switchboards: vec![format!("{sb}@sb.example.org:7878")],
        };
        let text = card.to_text();
        assert!(text.starts_with("kith:@"));
        assert_eq!(Card::parse(&text).unwrap(), card);
        let bare = Card {
            id,
            addrs: vec![],
            switchboards: vec![],
        };
        assert_eq!(Card::parse(&bare.to_text()).unwrap(), bare);
    }

    #[test]
    fn broken_cards_are_refused_by_name() {
        let id = crate::identity::Identity::generate().id();
        let sb = crate::identity::Identity::generate().id();
        let cases = [
            ("@x.ed25519".to_string(), "NotACard"),
            ("kith:@nope.ed25519".to_string(), "BadId"),
            (format!("kith:{id}?addr=nohost"), "BadAddress"),
            (format!("kith:{id}?addr=h:0"), "BadAddress"),
            (format!("kith:{id}?sb=sb.example:7878"), "BadSwitchboard"),
            (format!("kith:{id}?sb={sb}@h"), "BadSwitchboard"),
            (format!("kith:{id}?code=1234"), "BadPart"),
            (format!("kith:{id}?{}", "addr=h:1&".repeat(400)), "TooLong"),
        ];
        for (text, want) in cases {
            let got = Card::parse(&text).unwrap_err();
            assert!(format!("{got:?}").starts_with(want), "{text}: {got:?}");
        }
        let many: String = (1..=CARD_ADDRS_MAX + 1)
            .map(|p| format!("&addr=h:{p}"))
            .collect();
        assert_eq!(
            Card::parse(&format!("kith:{id}?{many}")),
            Err(CardError::TooMany(CARD_ADDRS_MAX, "addresses"))
        );
    }
}
