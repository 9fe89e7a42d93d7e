//! Why the web page could not start or answer: the named errors of [`crate::daemon::web`].

use std::path::PathBuf;

use crate::daemon::error::NodeError;

/// What went wrong in the web page.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A file of the web page (the login token, the address file) could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The login token file holds something that is not a token.
    #[error("{0}: not a login token; delete it and restart the daemon to make a new one")]
    TokenDamaged(PathBuf),
    /// The page may only be served on a loopback address.
    #[error("the web page is served on loopback only (127.0.0.1 or [::1]); {0} is not loopback")]
    NotLoopback(std::net::SocketAddr),
    /// The address could not be bound.
    #[error("binding the web page on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The daemon's answer to a request the page made was an error (its sentence).
    #[error("{0}")]
    Answer(String),
    /// The node could not answer.
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        WebError::Node(NodeError::from(e))
    }
}
