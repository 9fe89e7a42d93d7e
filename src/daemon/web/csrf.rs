//! The CSRF token every form of the web page carries.
//!
//! A synchronizer token without server state: the keyed BLAKE3 MAC of the session's nonce
//! (see [`crate::daemon::web::auth`]). A page on another site can make a browser post a form
//! here, but it cannot read a page of this one, so it cannot know the token; SameSite=Strict
//! cookies and the Origin check ([`crate::daemon::web::guard`]) stand in front of it as well.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::daemon::web::auth::{Keys, Session};

/// The name of the hidden field that carries the token.
pub const FIELD: &str = "csrf";

/// The CSRF token of `session`.
pub fn token(keys: &Keys, session: &Session) -> String {
    URL_SAFE_NO_PAD.encode(keys.mac(&[b"csrf", &session.nonce]).as_bytes())
}

/// Whether `given` is `session`'s CSRF token (compared in constant time).
pub fn check(keys: &Keys, session: &Session, given: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(given.trim()) else {
        return false;
    };
    let Ok(mac): Result<[u8; 32], _> = bytes.try_into() else {
        return false;
    };
    keys.mac(&[b"csrf", &session.nonce]) == blake3::Hash::from(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_session_and_key() {
        let keys = Keys::from_token("t".into());
        let a = keys.check_session(&keys.new_session(u64::MAX), 0).unwrap();
        let b = keys.check_session(&keys.new_session(u64::MAX), 0).unwrap();
        let t = token(&keys, &a);
        assert!(check(&keys, &a, &t));
        assert!(!check(&keys, &b, &t));
        assert!(!check(&Keys::from_token("u".into()), &a, &t));
        assert!(!check(&keys, &a, ""));
        assert!(!check(&keys, &a, "%%%"));
    }
}
