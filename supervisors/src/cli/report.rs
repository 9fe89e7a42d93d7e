//! How the `kith` binary prints an error: its chain of causes on one line, each cause once.
//!
//! Why not anyhow's `{:#}` alone: most library errors already put their source's text in their
//! own message (`"socket: {0}"` with `#[from] io::Error`), so the alternate format printed it a
//! second time (`socket: Address already in use (os error 98): Address already in use (os error
//! 98)`). A cause whose text already ends what has been printed is skipped.

/// The error and its causes, `: `-separated, without repeating a cause already in the text.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[derive(Debug, thiserror::Error)]
    enum Net {
        #[error("socket: {0}")]
        Io(#[from] std::io::Error),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the store")]
    struct Quiet(#[source] std::io::Error);

    fn in_use() -> std::io::Error {
        std::io::Error::from_raw_os_error(98)
    }

    #[test]
    fn a_source_already_in_the_message_is_printed_once() {
        let e = Err::<(), _>(Net::from(in_use()))
            .context("binding the peer endpoint on 127.0.0.1:1")
            .unwrap_err();
        let text = error_text(&e);
        assert_eq!(text.matches("os error 98").count(), 1, "{text}");
        assert!(text.starts_with("binding the peer endpoint on 127.0.0.1:1: socket: "));
    }

    #[test]
    fn a_source_not_in_the_message_is_still_printed() {
        let e = Err::<(), _>(Quiet(in_use()))
            .context("opening")
            .unwrap_err();
        assert_eq!(error_text(&e), format!("opening: the store: {}", in_use()));
    }
}
