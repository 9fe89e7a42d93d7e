//! The web page's server: a supervised worker serving the routes over HTTP/1.1 (axum on hyper)
//! on a loopback listener bound before the tree.
//!
//! Every request passes the Host/Origin check ([`crate::daemon::web::guard`]) first and every
//! answer carries a strict content security policy (scripts and styles from this server only,
//! no inline script, no framing, forms posted here only). Bounded like the metrics endpoint:
//! at most [`WEB_CONNECTIONS_MAX`] connections (the next waits in the kernel's backlog),
//! [`WEB_HEADER_TIMEOUT`] to send a request head, forms of at most [`WEB_FORM_BYTES_MAX`]. If
//! accepting fails the actor fails and its supervisor restarts it on the same listener. While
//! it runs, its address is in `web.addr` in the data directory, for `kith web`.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, ORIGIN, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::daemon::web::auth::ADDR_FILE;
use crate::daemon::web::error::WebError;
use crate::daemon::web::events::events;
use crate::daemon::web::state::WebState;
use crate::daemon::web::{attach, files, inbox, pages};
use crate::limits::{WEB_CONNECTIONS_MAX, WEB_FORM_BYTES_MAX, WEB_HEADER_TIMEOUT};
use crate::runtime::private_dir::write_private_file;
use crate::runtime::OwnedTask;

/// The content security policy of every answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SCRIPT: &str = include_str!("static/app.js");
const STYLE: &str = include_str!("static/style.css");

/// Bind the web page's listener (before the tree): loopback only.
pub fn bind(addr: SocketAddr) -> Result<Arc<StdListener>, WebError> {
    if !addr.ip().is_loopback() {
        return Err(WebError::NotLoopback(addr));
    }
    let bind_error = |source| WebError::Bind { addr, source };
    let listener = StdListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(Arc::new(listener))
}

/// The routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(pages::timeline))
        .route("/login", get(pages::login).post(pages::login_post))
        .route("/logout", post(pages::logout))
        .route("/compose", get(pages::compose))
        .route(
            "/post",
            post(pages::post).layer(DefaultBodyLimit::max(files::body_limit(
                state.node.blobs.store.limits().max_bytes,
            ))),
        )
        .route("/blob/{id}", get(pages::blob))
        .route("/inbox", get(inbox::inbox))
        .route("/inbox/{id}", get(inbox::thread))
        .route("/dm", post(inbox::send))
        .route("/settings/policy", post(pages::settings_policy))
        .route("/thread/{id}", get(pages::thread))
        .route("/profile/{id}", get(pages::profile))
        .route("/profile/{id}/{action}", post(pages::profile_action))
        .route("/follow", post(pages::follow))
        .route("/contacts", get(pages::contacts))
        .route("/status", get(pages::status))
        .route("/settings", get(pages::settings))
        .route("/settings/profile", post(pages::settings_profile))
        .route("/settings/status", post(pages::settings_status))
        .route("/events", get(events))
        .route("/static/app.js", get(script))
        .route("/static/style.css", get(style))
        .layer(DefaultBodyLimit::max(WEB_FORM_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The Host/Origin check before anything else, and the security headers after.
async fn guard(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let checked = {
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD);
        state
            .allowed
            .check(unsafe_method, header(HOST), header(ORIGIN))
    };
    let mut response = match checked {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::info!(%refusal, "web request refused");
            (
                StatusCode::FORBIDDEN,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{refusal}\n"),
            )
                .into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it Chromium sends `Origin: null` on a form post, which the check
    // above must refuse. `same-origin` gives other sites no referrer and this page its origin.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
        .into_response()
}

/// The static script and style sheet, as served (for the benchmark's page weight).
pub fn static_bytes() -> (usize, usize) {
    (SCRIPT.len(), STYLE.len())
}

/// The web page's server actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebServer;

/// What the web server starts with.
#[derive(Clone)]
pub struct WebArgs {
    /// The bound listener (shared across restarts).
    pub listener: Arc<StdListener>,
    /// What the pages read and change.
    pub state: WebState,
    /// The data directory (where `web.addr` is written).
    pub data_dir: PathBuf,
}

/// Messages to the web server.
#[derive(Debug)]
pub enum WebMsg {
    /// The accept loop failed; the actor fails so that it is restarted.
    AcceptFailed(String),
}

/// The server's state: its accept loop (with the connections it serves), aborted with it.
pub struct WebServerState {
    _accept: OwnedTask,
    addr_file: PathBuf,
}

/// Write `web.addr` (0600): where `kith web` finds the page.
fn write_addr(dir: &Path, addr: SocketAddr) -> Result<PathBuf, WebError> {
    let path = dir.join(ADDR_FILE);
    write_private_file(&path, format!("{addr}\n").as_bytes()).map_err(|source| WebError::File {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

impl Actor for WebServer {
    type Msg = WebMsg;
    type State = WebServerState;
    type Arguments = WebArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let listener = TcpListener::from_std(args.listener.try_clone()?)?;
        let addr = listener.local_addr()?;
        let addr_file = write_addr(&args.data_dir, addr)?;
        attach::clear_staging(&args.data_dir);
        let mut state = args.state;
        state.data_dir = Some(args.data_dir.as_path().into());
        tracing::info!(%addr, "web page served at http://{addr}/ (`kith web` prints the login link)");
        let failed = move |reason: String| {
            let _ = myself.cast(WebMsg::AcceptFailed(reason));
        };
        Ok(WebServerState {
            _accept: OwnedTask::spawn(accept_loop(listener, router(state), failed)),
            addr_file,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WebMsg::AcceptFailed(reason) => {
                Err(format!("web page listener accept failed: {reason}").into())
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // A restart writes it again; a stopped daemon leaves no address behind.
        let _ = std::fs::remove_file(&state.addr_file);
        Ok(())
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    failed: impl FnOnce(String) + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(WEB_CONNECTIONS_MAX));
    // Owned here, so that they are aborted with the loop (and so with the actor).
    let mut serving = JoinSet::new();
    loop {
        while serving.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                failed(e.to_string());
                return;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        serving.spawn(async move {
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(WEB_HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "web connection ended with an error");
            }
            drop(permit);
        });
    }
}
