//! Names are untrusted input: how a published name, a petname or a reaction is checked, cleaned
//! for display, and labelled so that nobody can pass for someone else.
//!
//! A name is whatever a feed's author (or a peer relaying it) chose: it may be long, hold control
//! characters that rewrite the terminal, direction overrides that reverse the text around it, or
//! simply copy the name of someone you know. So: [`check_name`] refuses such names when this node
//! publishes or stores one; [`clean`] makes any name shown safe (hidden characters dropped,
//! whitespace collapsed, bounded); and [`label`] decides what a user sees for a feed: the local
//! petname first (yours alone, never published), else the published name, with the short id
//! beside it whenever its [`skeleton`] collides with another petname or name this node knows
//! (so "AIice" or "alice " cannot pass for your petname "Alice"), else the short id.

use std::collections::BTreeMap;

use crate::feed::FeedError;
use crate::identity::FeedId;
use crate::limits::{NAME_BYTES_MAX, NAME_CHARS_SHOWN_MAX};

/// Characters never shown: controls (C0, C1, DEL), direction marks and overrides, zero-width
/// characters and other format characters that make text look unlike what it is.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0e}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// Check a name this node is about to publish or store (a profile name, a petname): some visible
/// text, at most [`NAME_BYTES_MAX`] bytes, one line, no hidden characters.
pub fn check_name(name: &str) -> Result<(), FeedError> {
    let bad = |why: String| FeedError::NameInvalid(why);
    if name.trim().is_empty() {
        return Err(bad("a name needs some visible text".into()));
    }
    if name.len() > NAME_BYTES_MAX {
        return Err(bad(format!(
            "a name is at most {NAME_BYTES_MAX} bytes; this one is {}",
            name.len()
        )));
    }
    if name.chars().any(is_hidden) {
        return Err(bad(
            "a name may not hold control, direction or zero-width characters".into(),
        ));
    }
    Ok(())
}

/// A name made safe to show: hidden characters dropped, runs of whitespace made one space,
/// trimmed, at most [`NAME_CHARS_SHOWN_MAX`] characters (an ellipsis marks a cut). Empty when
/// nothing visible is left.
pub fn clean(name: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut space = false;
    for c in name.chars().filter(|c| !is_hidden(*c)) {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if chars >= NAME_CHARS_SHOWN_MAX {
            out.push('…');
            break;
        }
        if space {
            out.push(' ');
            chars += 1;
            space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// The form two names are compared in: cleaned, lowercased, whitespace and punctuation dropped,
/// and look-alike Latin letters and digits folded together (`I`, `l`, `1`, `|` → `l`; `0` → `o`;
/// `rn` → `m`; common Cyrillic and Greek look-alikes to their Latin twins).
pub fn skeleton(name: &str) -> String {
    let lower: String = clean(name)
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .map(|c| match c {
            'i' | '1' | '|' | 'ı' | 'і' | 'ӏ' | 'ι' => 'l',
            '0' | 'о' | 'ο' => 'o',
            'а' | 'α' => 'a',
            'е' | 'ε' => 'e',
            'р' | 'ρ' => 'p',
            'с' => 'c',
            'х' | 'χ' => 'x',
            'у' | 'γ' => 'y',
            'к' | 'κ' => 'k',
            'ν' => 'v',
            '5' => 's',
            c => c,
        })
        .collect();
    lower.replace("rn", "m").replace("vv", "w")
}

/// What this node knows to name one feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// The petname this user gave it (local, never published).
    pub petname: Option<String>,
    /// The name its author published (latest self-published about).
    pub name: Option<String>,
}

/// How one feed is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// The text to show: `petname`, `name`, `name (@short)` or `@short`.
    pub text: String,
    /// The name shown (petname or published name), cleaned; none when only the id is shown.
    pub name: Option<String>,
    /// Whether the short id is shown beside a published name because it collides.
    pub collides: bool,
}

/// Labels for every feed in `known`: a petname wins; a published name is shown bare only when no
/// other feed's petname or name (nor another petname) has the same [`skeleton`].
pub fn label_all(known: &BTreeMap<FeedId, Known>) -> BTreeMap<FeedId, Label> {
    // Which feeds claim each skeleton: through a petname, and through any name at all.
    let mut petnames: BTreeMap<String, Vec<FeedId>> = BTreeMap::new();
    let mut any: BTreeMap<String, Vec<FeedId>> = BTreeMap::new();
    for (id, k) in known {
        for (n, is_pet) in [(&k.petname, true), (&k.name, false)] {
            let Some(n) = n else { continue };
            let s = skeleton(n);
            if s.is_empty() {
                continue;
            }
            let tables = if is_pet {
                vec![&mut petnames, &mut any]
            } else {
                vec![&mut any]
            };
            for table in tables {
                let ids = table.entry(s.clone()).or_default();
                if !ids.contains(id) {
                    ids.push(*id);
                }
            }
        }
    }
    known
        .iter()
        .map(|(id, k)| (*id, label_one(id, k, &petnames, &any)))
        .collect()
}

fn shared(claims: &BTreeMap<String, Vec<FeedId>>, id: &FeedId, name: &str) -> bool {
    claims
        .get(&skeleton(name))
        .is_some_and(|ids| ids.iter().any(|other| other != id))
}

fn label_one(
    id: &FeedId,
    known: &Known,
    petnames: &BTreeMap<String, Vec<FeedId>>,
    any: &BTreeMap<String, Vec<FeedId>>,
) -> Label {
    let short = id.short();
    let with_id = |name: String, collides: bool| Label {
        text: if collides {
            format!("{name} ({short})")
        } else {
            name.clone()
        },
        name: Some(name),
        collides,
    };
    if let Some(pet) = known
        .petname
        .as_deref()
        .map(clean)
        .filter(|p| !p.is_empty())
    {
        // A petname is yours: only another petname of yours alike makes it ambiguous.
        let collides = shared(petnames, id, &pet);
        return with_id(pet, collides);
    }
    if let Some(name) = known.name.as_deref().map(clean).filter(|n| !n.is_empty()) {
        // A published name is anyone's claim: any other petname or name alike shows the id.
        let collides = shared(any, id, &name);
        return with_id(name, collides);
    }
    Label {
        text: short,
        name: None,
        collides: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(petname: Option<&str>, name: Option<&str>) -> Known {
        Known {
            petname: petname.map(str::to_string),
            name: name.map(str::to_string),
        }
    }

    #[test]
    fn hostile_names_are_refused_and_cleaned() {
        for bad in [
            "",
            "   ",
            "a\nb",
            "\u{1b}[31mred",
            "evil\u{202e}gnp.exe",
            "zero\u{200b}width",
        ] {
            assert!(
                matches!(check_name(bad), Err(FeedError::NameInvalid(_))),
                "{bad:?}"
            );
        }
        assert!(check_name(&"x".repeat(NAME_BYTES_MAX + 1)).is_err());
        check_name("Ada Lovelace 🦊").unwrap();
        assert_eq!(
            clean("  \u{1b}[31mAda\n\t Love\u{202e}lace  "),
            "[31mAda Lovelace"
        );
        assert_eq!(clean("\u{200b}\u{202e}"), "");
        let long = clean(&"é".repeat(500));
        assert_eq!(long.chars().count(), NAME_CHARS_SHOWN_MAX + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        assert_eq!(skeleton("Alice"), skeleton("AIice"));
        assert_eq!(skeleton("alice"), skeleton(" A l i c e "));
        assert_eq!(skeleton("Alice"), skeleton("Аlice")); // Cyrillic А
        assert_eq!(skeleton("modem"), skeleton("rnodem"));
        assert_ne!(skeleton("Alice"), skeleton("Bob"));
    }

    #[test]
    fn a_petname_wins_and_a_colliding_name_shows_its_id() {
        let (mum, imposter, bob, nobody) = (
            FeedId([1; 32]),
            FeedId([2; 32]),
            FeedId([3; 32]),
            FeedId([4; 32]),
        );
        let mut all = BTreeMap::new();
        all.insert(mum, known(Some("Mum"), Some("Margaret")));
        all.insert(imposter, known(None, Some("mum")));
        all.insert(bob, known(None, Some("Bob")));
        all.insert(nobody, known(None, None));
        let labels = label_all(&all);
        assert_eq!(labels[&mum].text, "Mum");
        assert_eq!(
            labels[&imposter].text,
            format!("mum ({})", imposter.short())
        );
        assert!(labels[&imposter].collides);
        assert_eq!(labels[&bob].text, "Bob");
        assert_eq!(labels[&nobody].text, nobody.short());
        // Two feeds publishing one name: both show their ids.
        all.insert(nobody, known(None, Some("B0b")));
        let labels = label_all(&all);
        assert!(labels[&bob].collides && labels[&nobody].collides);
        // A feed's own petname and name never collide with each other.
        all.insert(bob, known(Some("bob"), Some("Bob")));
        all.remove(&nobody);
        assert_eq!(label_all(&all)[&bob].text, "bob");
    }
}
