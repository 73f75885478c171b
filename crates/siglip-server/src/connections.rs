//! Accepting connections: at most `connections.max_connections` open at once, a head that
//! must arrive within `connections.header_read_timeout_ms`, and a graceful drain on shutdown.
//!
//! axum's own `serve` gives hyper no timer, so a client could hold a connection open forever
//! by sending half a request head. Here hyper gets tokio's timer and the timeout; the same
//! clock runs while a keep-alive connection waits for its next request (hyper starts it
//! whenever it waits for a head), so idle connections close after the same time.
//!
//! Lifecycle: `serve` loops on `accept` until `shutdown` resolves. Each accepted connection
//! holds one permit of the `open` semaphore until it closes; with none left, the loop waits
//! for one before accepting again (the kernel's backlog holds the rest). On shutdown the loop
//! stops accepting, every connection is told to finish its request in flight and close, and
//! `serve` returns when the last one has.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The connection limits.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Longest time for a request head to arrive, and for a keep-alive connection to stay
    /// idle, ms.
    pub header_read_timeout_ms: u64,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout_ms: 10_000,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains the open connections.
/// Requests carry the peer's address as axum's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &ConnectionsConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_read_timeout_ms));
    let open = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
