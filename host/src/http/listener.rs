//! The listening socket and the connections on it: a header-read timeout (which also closes
//! idle keep-alive connections), a cap on open connections, and one per client address, so
//! that idle or half-sent requests cannot use up the file descriptors. warp's own server has
//! none of these; this loop is warp's, with them added.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::Semaphore,
};
use warp::reply::Response;

/// Binds `addr` with `TCP_NODELAY`, which Linux passes on to every accepted connection.
/// Without it a response written in two pieces (headers, then body) can wait for the client's
/// delayed ACK: 40 ms added to some requests. warp does not set it itself.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The bounds on connections (ML_HEADER_TIMEOUT, ML_MAX_CONNECTIONS,
/// ML_MAX_CONNECTIONS_PER_CLIENT).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub per_client: usize,
}

/// The client's address, in each request's extensions (for the auth throttle).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Open connections per client address.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

struct ClientSlot {
    table: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<ClientSlot> {
        let mut table = self.0.lock();
        let open = table.entry(ip).or_default();
        if *open >= limit {
            return None;
        }
        *open += 1;
        Some(ClientSlot {
            table: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut table = self.table.0.lock();
        if let Some(open) = table.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                table.remove(&self.ip);
            }
        }
    }
}

/// Logs at most once every ten seconds per kind, so that a flood does not flood the log too.
struct Throttled {
    start: Instant,
    last: AtomicU64,
}

impl Throttled {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            // So that the first one logs.
            last: AtomicU64::new(u64::MAX),
        }
    }

    fn due(&self) -> bool {
        let now = self.start.elapsed().as_secs();
        let last = self.last.load(Ordering::Relaxed);
        (last == u64::MAX || now >= last + 10)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Serves `service` on `listener` until `shutdown` completes, then lets the open requests
/// finish (the caller bounds how long).
pub async fn serve<S>(listener: TcpListener, service: S, limits: Limits, shutdown: impl Future<Output = ()>)
where
    S: tower_service::Service<
            hyper::Request<Incoming>,
            Response = Response,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = Arc::new(PerClient::default());
    let (full_log, client_log) = (Arc::new(Throttled::new()), Arc::new(Throttled::new()));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Past the cap, stop accepting: new connections wait in the kernel's backlog until one
        // closes, and the header timeout closes the idle ones.
        let slot = if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
            slot
        } else {
            if full_log.due() {
                log::warn!(
                    "{} connections are open (ML_MAX_CONNECTIONS): new ones wait until one closes",
                    limits.max_connections
                );
            }
            tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    log::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(client_slot) = per_client.take(peer.ip(), limits.per_client.max(1)) else {
            if client_log.due() {
                log::warn!(
                    "{} has {} connections open (ML_MAX_CONNECTIONS_PER_CLIENT): closing its new ones",
                    peer.ip(),
                    limits.per_client
                );
            }
            drop(stream);
            continue;
        };
        let service = service.clone();
        let client = ClientAddr(peer.ip());
        let handler = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(client);
            let mut service = service.clone();
            service.call(request)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true);
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), handler));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // A client that went away, or one too slow with its headers.
                log::debug!("connection from {peer}: {e}");
            }
            drop((slot, client_slot));
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_acks() {
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (accepted, _) = listener.accept().await.expect("accept");
        assert!(accepted.nodelay().expect("nodelay"));
    }

    #[test]
    fn each_client_gets_its_share_and_it_comes_back() {
        let table = Arc::new(PerClient::default());
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = table.take(a, 2).expect("1st");
        let _second = table.take(a, 2).expect("2nd");
        assert!(table.take(a, 2).is_none(), "a third from the same address");
        assert!(table.take(b, 2).is_some(), "another address has its own");
        drop(first);
        assert!(table.take(a, 2).is_some(), "a closed connection frees its slot");
    }
}
