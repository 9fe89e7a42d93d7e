//! Mentions: `@name` and `@id` in a post's text, resolved to feed ids when posting.
//!
//! A post stores the ids it mentions (so a reader's node finds "posts that mention me" without
//! trusting anyone's names); the text keeps what the author typed. [`tokens`] finds the mentions
//! typed; [`resolve`] turns them into ids against the names this node knows: a full id always
//! resolves; a name resolves when exactly one known feed has it as petname or published name
//! (compared without case and whitespace); a name nobody has is left as text (an `@` is not
//! always a mention); a name several feeds have is refused by name, so the author picks an id.

use crate::feed::names::clean;
use crate::feed::FeedError;
use crate::identity::FeedId;
use crate::limits::MENTIONS_MAX;

/// One mention as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Typed {
    /// A full id (`@<base64>.ed25519`).
    Id(FeedId),
    /// A name (the text after `@`).
    Name(String),
}

/// The mentions typed in `text`, in order, without repeats.
pub fn tokens(text: &str) -> Vec<Typed> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let preceded_by_word = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric());
        let after = &rest[at..];
        // An id runs to `.ed25519`; a name to the first character that is not a name character.
        let token = if let Some(end) = after.find(".ed25519") {
            let candidate = &after[..end + ".ed25519".len()];
            match candidate.parse::<FeedId>() {
                Ok(id) => Some((Typed::Id(id), candidate.len())),
                Err(_) => None,
            }
        } else {
            None
        };
        let token = token.or_else(|| {
            let name: String = after[1..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            let name = name.trim_end_matches('.').to_string();
            (!name.is_empty()).then(|| {
                let len = 1 + name.len();
                (Typed::Name(name), len)
            })
        });
        match token {
            // `me@example.org` is an address, not a mention.
            Some((typed, len)) if !preceded_by_word => {
                if !out.contains(&typed) {
                    out.push(typed);
                }
                rest = &after[len..];
            }
            Some((_, len)) => rest = &after[len..],
            None => rest = &after[1..],
        }
    }
    out
}

fn folded(name: &str) -> String {
    clean(name)
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Resolve typed mentions against `known`: each feed with the names it goes by (petname,
/// published name). Returns the ids, in the order typed, at most [`MENTIONS_MAX`].
pub fn resolve(typed: &[Typed], known: &[(FeedId, Vec<String>)]) -> Result<Vec<FeedId>, FeedError> {
    let mut out: Vec<FeedId> = Vec::new();
    for t in typed {
        let id = match t {
            Typed::Id(id) => Some(*id),
            Typed::Name(name) => {
                let want = folded(name);
                let mut matches: Vec<FeedId> = known
                    .iter()
                    .filter(|(_, names)| names.iter().any(|n| folded(n) == want))
                    .map(|(id, _)| *id)
                    .collect();
                matches.dedup();
                match matches.len() {
                    0 => None,
                    1 => Some(matches[0]),
                    _ => {
                        return Err(FeedError::MentionAmbiguous {
                            name: clean(name),
                            ids: matches.iter().map(FeedId::short).collect(),
                        })
                    }
                }
            }
        };
        if let Some(id) = id {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    if out.len() > MENTIONS_MAX {
        return Err(FeedError::TooManyMentions {
            len: out.len(),
            max: MENTIONS_MAX,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_found_and_addresses_are_not() {
        let id = crate::identity::Identity::generate().id();
        let text = format!("hi @Ada, and {id}! mail me@example.org @ada @- @x.");
        assert_eq!(
            tokens(&text),
            vec![
                Typed::Name("Ada".into()),
                Typed::Id(id),
                Typed::Name("ada".into()),
                Typed::Name("-".into()),
                Typed::Name("x".into()),
            ]
        );
        assert!(tokens("no mentions here, 5 @ 3").is_empty());
        // A broken id is read as a name up to the first non-name character.
        assert_eq!(
            tokens("@notanid.ed25519"),
            vec![Typed::Name("notanid.ed25519".into())]
        );
    }

    #[test]
    fn names_resolve_only_when_one_feed_has_them() {
        let (ada, bob, bob2) = (FeedId([1; 32]), FeedId([2; 32]), FeedId([3; 32]));
        let known = vec![
            (ada, vec!["Ada Lovelace".to_string()]),
            (bob, vec!["Bob".to_string()]),
            (bob2, vec!["Robert".to_string(), "bob".to_string()]),
        ];
        let typed = tokens("@adalovelace and @nobody");
        assert_eq!(resolve(&typed, &known).unwrap(), vec![ada]);
        match resolve(&tokens("@Bob"), &known) {
            Err(FeedError::MentionAmbiguous { name, ids }) => {
                assert_eq!(name, "Bob");
                assert_eq!(ids.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        let id = crate::identity::Identity::generate().id();
        assert_eq!(
            resolve(&tokens(&format!("{id} {id} @Robert")), &known).unwrap(),
            vec![id, bob2]
        );
        let many: String = (0..=MENTIONS_MAX)
            .map(|_| format!("{} ", crate::identity::Identity::generate().id()))
            .collect();
        assert!(matches!(
            resolve(&tokens(&many), &known),
            Err(FeedError::TooManyMentions { .. })
        ));
    }
}
