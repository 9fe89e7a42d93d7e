//! The metrics endpoint: a supervised worker that answers `GET /metrics` and `GET /ready` over
//! HTTP/1.1 (hyper) on a TCP listener bound before the tree.
//!
//! Bounded like every other door of the process: at most [`METRICS_CONNECTIONS_MAX`] scrapes
//! at once (the next waits in the kernel's backlog), [`METRICS_HEADER_TIMEOUT`] to send a
//! request head, [`METRICS_CONNECTION_TIMEOUT`] for a whole connection, one request per
//! connection, and [`METRICS_GATHER_TIMEOUT`] to gather the figures. If accepting fails the
//! actor fails and its supervisor restarts it on the same listener.

use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::limits::{
    METRICS_CONNECTIONS_MAX, METRICS_CONNECTION_TIMEOUT, METRICS_GATHER_TIMEOUT,
    METRICS_HEADER_TIMEOUT,
};
use crate::metrics::MetricsError;
use crate::runtime::OwnedTask;
use crate::supervisor::SupervisorReport;

/// What one scrape found.
#[derive(Debug)]
pub struct Gathered {
    /// The text format, or why there is none.
    pub text: Result<String, MetricsError>,
    /// `None` when ready; else what is not (the body of a 503 on `/ready`).
    pub not_ready: Option<String>,
}

/// Gathers one scrape's figures (a role's collector, given by whoever built the tree).
pub type MetricsSource =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Gathered> + Send>> + Send + Sync>;

/// Reports the live supervision tree (typed), for the restarts per supervisor and readiness.
pub type ReportFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<SupervisorReport>> + Send>> + Send + Sync>;

/// Bind the metrics listener (before the tree: a bad or taken address fails the start).
pub fn bind(addr: SocketAddr) -> std::io::Result<Arc<StdListener>> {
    let listener = StdListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(Arc::new(listener))
}

/// The metrics server actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsServer;

/// What the metrics server starts with.
#[derive(Clone)]
pub struct MetricsArgs {
    /// The bound listener (shared across restarts).
    pub listener: Arc<StdListener>,
    /// The role's collector.
    pub source: MetricsSource,
}

/// Messages to the metrics server.
#[derive(Debug)]
pub enum MetricsMsg {
    /// The accept loop failed; the actor fails so that it is restarted.
    AcceptFailed(String),
}

/// The server's state: its accept loop (with the connections it serves), aborted with it.
pub struct MetricsState {
    _accept: OwnedTask,
}

impl Actor for MetricsServer {
    type Msg = MetricsMsg;
    type State = MetricsState;
    type Arguments = MetricsArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let listener = TcpListener::from_std(args.listener.try_clone()?)?;
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "metrics served at http://{addr}/metrics");
        }
        let failed = move |reason: String| {
            let _ = myself.cast(MetricsMsg::AcceptFailed(reason));
        };
        Ok(MetricsState {
            _accept: OwnedTask::spawn(accept_loop(listener, args.source, failed)),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MetricsMsg::AcceptFailed(reason) => {
                Err(format!("metrics listener accept failed: {reason}").into())
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    source: MetricsSource,
    failed: impl FnOnce(String) + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(METRICS_CONNECTIONS_MAX));
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
        let source = Arc::clone(&source);
        serving.spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&source)));
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(METRICS_HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(METRICS_CONNECTION_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "metrics connection failed"),
                Err(_) => tracing::debug!("metrics connection cut at its deadline"),
            }
            drop(permit);
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    source: MetricsSource,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    if path != "/metrics" && path != "/ready" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found: GET /metrics (Prometheus text) or /ready\n".into(),
        ));
    }
    if request.method() != Method::GET {
        return Ok(plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served here\n".into(),
        ));
    }
    let metrics = path == "/metrics";
    let gathered = match tokio::time::timeout(METRICS_GATHER_TIMEOUT, source()).await {
        Ok(gathered) => gathered,
        Err(_) => Gathered {
            text: Err(MetricsError::GatherTimeout(METRICS_GATHER_TIMEOUT)),
            not_ready: Some("the figures could not be gathered in time".into()),
        },
    };
    Ok(match (metrics, gathered) {
        (true, Gathered { text: Ok(text), .. }) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        (true, Gathered { text: Err(e), .. }) => {
            plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
        }
        (
            false,
            Gathered {
                not_ready: None, ..
            },
        ) => plain(StatusCode::OK, "ready\n".into()),
        (
            false,
            Gathered {
                not_ready: Some(why),
                ..
            },
        ) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    })
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
