//! Connections: the accept loop, its limits and a shutdown that ends in bounded time.
//!
//! `axum::serve` has no read timeouts and no connection cap, so a client that opens connections
//! and sends nothing (or a body a byte at a time) could hold them, and the process's file
//! descriptors, forever. Here:
//! - a connection that has not sent a request's headers within `limits.header_timeout_seconds`
//!   (the first request's, or the next one's on a kept-alive connection) is closed;
//! - a body not read within `limits.body_timeout_seconds` is answered `408` (the `read_body`
//!   middleware in the router);
//! - beyond `limits.max_connections` open connections, a few more are served by a small router
//!   that answers `/healthz` and `503 overloaded` to everything else, one request each, with a
//!   short header timeout; connections beyond those are closed at once;
//! - at shutdown the listener closes, open connections finish their request (streams included)
//!   within `limits.shutdown_grace_seconds`, and then running compressions are cancelled and
//!   the rest are dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::{overflow_router, router, AppState, Error};

/// Connections served past `limits.max_connections`, so `/healthz` still answers and clients
/// are told to retry rather than left waiting.
const OVERFLOW_CONNECTIONS: usize = 32;
/// How long an overflow connection may take to send its request's headers.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// A pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves until `shutdown` resolves, then stops as described in the module documentation.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let limits = state.config.limits.clone();
    let app = router(Arc::clone(&state));
    let overflow = overflow_router(Arc::clone(&state));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let spare = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let connection = if let Ok(permit) = Arc::clone(&slots).try_acquire_owned() {
            Connection {
                service: app.clone(),
                permit,
                keep_alive: true,
                header_timeout: limits.header_timeout(),
            }
        } else if let Ok(permit) = Arc::clone(&spare).try_acquire_owned() {
            Connection {
                service: overflow.clone(),
                permit,
                keep_alive: false,
                header_timeout: OVERFLOW_HEADER_TIMEOUT.min(limits.header_timeout()),
            }
        } else {
            tracing::debug!("connection refused: limits.max_connections and the overflow are full");
            continue;
        };
        connections.spawn(connection.serve(stream, stopping.clone()));
    }
    drop(listener);
    tracing::info!(
        open = connections.len(),
        "stopped accepting; finishing open requests"
    );
    // Receivers only fail once the sender is dropped, which happens after this.
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace(), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "limits.shutdown_grace_seconds passed: dropping the open connections"
        );
    }
    state.pool.stop();
    connections.shutdown().await;
    Ok(())
}

struct Connection {
    service: Router,
    /// Held while the connection is open.
    permit: OwnedSemaphorePermit,
    keep_alive: bool,
    header_timeout: Duration,
}

impl Connection {
    async fn serve(self, stream: TcpStream, mut stopping: watch::Receiver<bool>) {
        let _permit = self.permit;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .keep_alive(self.keep_alive);
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(self.service));
        tokio::pin!(connection);
        let stop = async move {
            // The guard `wait_for` returns is not `Send`: drop it before the connection's await.
            let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
        };
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = stop => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = result {
            // Timeouts and clients that hang up mid-request end up here.
            tracing::debug!("connection ended: {e}");
        }
    }
}
