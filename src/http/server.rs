//! The listener's accept loop, with limits `axum::serve` does not set: at most
//! [`MAX_CONNECTIONS`] open connections, and [`HEADER_READ_TIMEOUT`] to send a request's
//! headers (also the longest a kept-alive connection may sit idle between requests).
//!
//! Why both: every connection is a file descriptor of the process the driver also needs, and
//! a client that opens sockets and sends nothing (or a header a byte a minute) would otherwise
//! hold them forever. At the cap, the new connection is served and the oldest connection with
//! no request under way is closed, so a flood of idle sockets cannot lock out the next scrape;
//! only when every connection is busy answering does a new one wait for a slot (in the
//! kernel's accept queue, which costs the process no descriptor beyond the one waiting).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub const MAX_CONNECTIONS: usize = 64;
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the requests under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One open connection: how to close it, and how many of its requests are under way (from
/// the call of the handler to the last byte of the response body).
struct Slot {
    id: u64,
    close: CancellationToken,
    busy: Arc<AtomicUsize>,
}

/// The open connections, oldest first. Locked on accept and close only.
#[derive(Default)]
struct Connections {
    slots: Mutex<VecDeque<Slot>>,
    next_id: AtomicUsize,
}

impl Connections {
    fn open(&self) -> (u64, CancellationToken, Arc<AtomicUsize>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as u64;
        let (close, busy) = (CancellationToken::new(), Arc::new(AtomicUsize::new(0)));
        let slot = Slot {
            id,
            close: close.clone(),
            busy: busy.clone(),
        };
        self.lock().push_back(slot);
        (id, close, busy)
    }

    fn closed(&self, id: u64) {
        self.lock().retain(|s| s.id != id);
    }

    /// Closes the oldest connection with no request under way; false if every one is busy.
    fn evict_oldest_idle(&self) -> bool {
        let mut slots = self.lock();
        let Some(i) = slots
            .iter()
            .position(|s| s.busy.load(Ordering::Acquire) == 0)
        else {
            return false;
        };
        if let Some(slot) = slots.remove(i) {
            slot.close.cancel();
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves `router` on `listener` until `stop`, then lets the requests under way finish (up to
/// [`SHUTDOWN_GRACE`]).
pub async fn serve(listener: TcpListener, router: Router, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = Arc::new(Connections::default());
    let service = TowerToHyperService::new(router);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: the
                    // listener itself is fine; a pause keeps an error from spinning the loop.
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                connections.evict_oldest_idle();
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break, // never closed
                    },
                    _ = stop.cancelled() => break,
                }
            }
        };
        let connections = connections.clone();
        let (service, stop) = (service.clone(), stop.clone());
        tokio::spawn(async move {
            let (id, close, busy) = connections.open();
            connection(stream, service, busy, close, stop).await;
            connections.closed(id);
            drop(permit);
        });
    }
    // Every permit back: every connection has finished.
    let all = MAX_CONNECTIONS as u32;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all)).await;
}

/// Serves one connection until the client leaves, it is evicted (`close`), or `stop` (then the
/// request under way, if any, is finished first).
async fn connection(
    stream: TcpStream,
    service: TowerToHyperService<Router>,
    busy: Arc<AtomicUsize>,
    close: CancellationToken,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let tracked = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let under_way = Busy::enter(&busy);
        let service = service.clone();
        async move {
            let response = service.call(request).await?;
            // The request stays under way until its body has been written (or dropped).
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                Body::from_stream(body.into_data_stream().map(move |chunk| {
                    let _ = &under_way;
                    chunk
                }))
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), tracked);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = close.cancelled() => return,
        _ = stop.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// A request under way on a connection, counted while it lives.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(count: &Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::AcqRel);
        Busy(count.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
