//! The connection layer plain HTTP and HTTPS are both served with: what one client can make
//! the service spend in connections and time ([`ConnectionLimits`]).
//!
//! - **Timeouts.** The TLS handshake, a request's headers (from the connection's start or from
//!   the first byte of the request), its whole body (from the end of its headers), the idle
//!   time between requests on a kept-alive connection, and a response write that makes no
//!   progress: each ends the connection when it runs out (a late body is answered `400`
//!   first). They are enforced on the connection's byte stream and on the request body, so
//!   the handlers never see a stalled client.
//! - **Connection cap.** At most [`ConnectionLimits::max_connections`] connections are open;
//!   a new one beyond that is closed at once. Optionally each peer address holds at most
//!   [`ConnectionLimits::max_connections_per_peer`]: a peer at its cap that connects again
//!   closes its own oldest connection that has not yet been answered a request (stalled in its
//!   headers or body, or idle since it connected), so a client that floods connections only
//!   displaces its own stalled ones, and its next honest connection is served. When all of the
//!   peer's connections have been answered a request, the new one is refused. Refusals and
//!   evictions are logged at most once a minute, with how many there were since the last line.
//! - **Shutdown.** Accepting stops, connections without a request with the handlers (idle, or
//!   stalled in their headers) close, requests in flight get
//!   [`ConnectionLimits::shutdown_grace`] to finish; the connections still open then are
//!   dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use crate::tls::{self, ClientTerminal};

/// What one client can make the service spend in connections and time; every field has a
/// flag of `mynacard registry serve` (`options::ServeArgs`).
///
/// The defaults are for terminals, which send a request of a few kilobytes in milliseconds:
/// they leave a slow mobile link a wide margin and still free a stalled connection within
/// seconds.
///
/// ```
/// let limits = mynacard_registry::ConnectionLimits::default();
/// assert_eq!(limits.max_connections, 512);
/// assert!(limits.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to finish the TLS handshake (HTTPS only). Default 10 s.
    pub handshake_timeout: Duration,
    /// How long a client may take to send a request's line and headers: for the first request
    /// from when the connection is ready (after the handshake), for later ones from their first
    /// byte. Default 10 s.
    pub header_timeout: Duration,
    /// How long a request's whole body may take to arrive, from the end of its headers; a body
    /// still incomplete then is answered `400` and the connection closed. The body is at most
    /// 64 KiB (`http`), so this is also a minimum pace. Default 10 s.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for the first byte of its next request.
    /// Default 30 s.
    pub idle_timeout: Duration,
    /// How long a response write may make no progress (a client that does not read). Default
    /// 10 s.
    pub write_timeout: Duration,
    /// Connections open at once, from all clients; keep it well below the process's
    /// descriptor limit (`ulimit -n`), which the database and files share. Default 512.
    pub max_connections: usize,
    /// Connections open at once from one peer address; `None` for no cap per peer. Default 64.
    pub max_connections_per_peer: Option<usize>,
    /// On shutdown, how long requests in flight may take to finish before their connections
    /// are dropped. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            max_connections: 512,
            max_connections_per_peer: Some(64),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A [`ConnectionLimits`] field that must be more than zero is zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connection limits: {0} must be more than zero")]
pub struct ConnectionLimitsError(pub &'static str);

impl ConnectionLimits {
    /// Checks that every timeout and cap is more than zero (the shutdown grace may be zero:
    /// connections are then dropped at once).
    pub fn validate(&self) -> Result<(), ConnectionLimitsError> {
        for (name, timeout) in [
            ("the handshake timeout", self.handshake_timeout),
            ("the header timeout", self.header_timeout),
            ("the body timeout", self.body_timeout),
            ("the idle timeout", self.idle_timeout),
            ("the write timeout", self.write_timeout),
        ] {
            if timeout.is_zero() {
                return Err(ConnectionLimitsError(name));
            }
        }
        if self.max_connections == 0 {
            return Err(ConnectionLimitsError("the connection cap"));
        }
        if self.max_connections_per_peer == Some(0) {
            return Err(ConnectionLimitsError("the connection cap per peer"));
        }
        Ok(())
    }
}

/// Counts of the service's client connections since it started
/// (`RunningService::connection_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Open now.
    pub open: u64,
    /// Accepted and served (not refused).
    pub accepted: u64,
    /// Closed at once because a cap was reached.
    pub refused: u64,
    /// Closed to make room for a newer connection of the same peer.
    pub evicted: u64,
    /// Closed because a handshake, header, body, idle or write timeout ran out.
    pub timed_out: u64,
}

/// The live counters behind [`ConnectionStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    open: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    evicted: AtomicU64,
    timed_out: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ConnectionStats {
        ConnectionStats {
            open: self.open.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state stays consistent between statements, so a panic elsewhere leaves it
    // usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where one connection is between and within requests, for its read deadlines.
#[derive(Debug)]
struct Phase {
    /// A request is with the handlers (its body has its own deadline).
    handling: bool,
    /// When the connection began to wait for its next request.
    waiting_since: Instant,
    /// When the first byte of the next request arrived.
    head_started: Option<Instant>,
    /// No request has been answered yet.
    first: bool,
    /// The read that waits without a deadline while a request is handled: woken when the
    /// request is answered, so that it takes up the idle deadline.
    reader: Option<std::task::Waker>,
}

/// One connection's state, shared by its byte stream, its requests and the accept loop.
#[derive(Debug)]
struct ConnState {
    phase: Mutex<Phase>,
    answered: AtomicU64,
    limits: ConnectionLimits,
    counters: Arc<Counters>,
}

impl ConnState {
    fn new(limits: ConnectionLimits, counters: Arc<Counters>) -> ConnState {
        ConnState {
            phase: Mutex::new(Phase {
                handling: false,
                waiting_since: Instant::now(),
                head_started: None,
                first: true,
                reader: None,
            }),
            answered: AtomicU64::new(0),
            limits,
            counters,
        }
    }

    /// When a read that waits must give up: `None` while a request is handled (then `waker`
    /// is woken once it is answered).
    fn read_deadline(&self, waker: &std::task::Waker) -> Option<Instant> {
        let mut phase = lock(&self.phase);
        if phase.handling {
            phase.reader = Some(waker.clone());
            return None;
        }
        Some(match phase.head_started {
            Some(start) => start + self.limits.header_timeout,
            None if phase.first => phase.waiting_since + self.limits.header_timeout,
            None => phase.waiting_since + self.limits.idle_timeout,
        })
    }

    /// The connection is ready for its first request (after the TLS handshake).
    fn ready(&self) {
        lock(&self.phase).waiting_since = Instant::now();
    }

    fn bytes_read(&self) {
        let mut phase = lock(&self.phase);
        if !phase.handling && phase.head_started.is_none() {
            phase.head_started = Some(Instant::now());
        }
    }

    fn request_started(&self) {
        lock(&self.phase).handling = true;
    }

    fn request_answered(&self) {
        let mut phase = lock(&self.phase);
        phase.handling = false;
        phase.first = false;
        phase.head_started = None;
        phase.waiting_since = Instant::now();
        self.answered.fetch_add(1, Ordering::Relaxed);
        if let Some(reader) = phase.reader.take() {
            reader.wake();
        }
    }

    fn is_handling(&self) -> bool {
        lock(&self.phase).handling
    }

    fn has_answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed) > 0
    }

    fn timed_out(&self, what: &'static str) {
        Counters::add(&self.counters.timed_out);
        tracing::debug!(timeout = what, "connection timed out");
    }
}

/// Marks a request as with the handlers until its response is ready.
struct Handling(Arc<ConnState>);

impl Handling {
    fn start(conn: &Arc<ConnState>) -> Handling {
        conn.request_started();
        Handling(Arc::clone(conn))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.request_answered();
    }
}

/// A connection's byte stream with its read deadlines (headers, idle) and write timeout.
struct GuardedIo<S> {
    inner: S,
    conn: Arc<ConnState>,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<S> GuardedIo<S> {
    fn new(inner: S, conn: Arc<ConnState>) -> GuardedIo<S> {
        GuardedIo {
            inner,
            conn,
            read_timer: None,
            write_timer: None,
        }
    }

    /// `Pending` unless the write timeout ran out while `result` kept pending.
    fn guard_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.write_timer = None;
            return result;
        }
        let timeout = self.conn.limits.write_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            self.conn.timed_out("write");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client does not read the response",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if result.is_ok() && buf.filled().len() > before {
                    this.conn.bytes_read();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let Some(deadline) = this.conn.read_deadline(cx.waker()) else {
                    return Poll::Pending;
                };
                let timer = this
                    .read_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    this.conn.timed_out("header or idle");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no complete request in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard_write(cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard_write(cx, result)
    }
}

/// The request body did not arrive within the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] once its deadline has passed.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    expired: bool,
    conn: Arc<ConnState>,
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            this.expired = true;
            this.conn.timed_out("body");
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The open connections, for the caps and for eviction. Ids grow with age.
#[derive(Default)]
struct Tracker {
    next: u64,
    conns: HashMap<u64, Tracked>,
    per_peer: HashMap<IpAddr, usize>,
}

struct Tracked {
    peer: IpAddr,
    conn: Arc<ConnState>,
    abort: Option<AbortHandle>,
}

impl Tracker {
    fn remove(&mut self, id: u64) -> Option<Tracked> {
        let tracked = self.conns.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&tracked.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&tracked.peer);
            }
        }
        Some(tracked)
    }
}

/// What the accept loop does with a new connection.
enum Admission {
    /// Serve it; `evicted` tells that an older connection of its peer was closed for it.
    Admit {
        id: u64,
        conn: Arc<ConnState>,
        evicted: bool,
    },
    /// The peer is at its cap with only answered connections.
    PeerFull,
    /// The service is at its cap.
    Full,
}

/// Removes a connection from the tracker when its task ends or is aborted.
struct Registration {
    tracker: Arc<Mutex<Tracker>>,
    id: u64,
    counters: Arc<Counters>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.tracker).remove(self.id);
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One log line per interval for an event that may come in floods, with the count in between.
struct LogThrottle {
    last: Option<Instant>,
    since: u64,
}

impl LogThrottle {
    const INTERVAL: Duration = Duration::from_secs(60);

    fn new() -> LogThrottle {
        LogThrottle {
            last: None,
            since: 0,
        }
    }

    /// `Some(events since the last line)` when a line is due.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        self.since += 1;
        match self.last {
            Some(last) if now.duration_since(last) < Self::INTERVAL => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.since))
            }
        }
    }
}

/// The accept loop's state.
struct Server {
    limits: ConnectionLimits,
    counters: Arc<Counters>,
    tracker: Arc<Mutex<Tracker>>,
}

impl Server {
    fn admit(&self, peer: IpAddr) -> Admission {
        let mut tracker = lock(&self.tracker);
        let mut evicted = false;
        if let Some(cap) = self.limits.max_connections_per_peer
            && tracker.per_peer.get(&peer).copied().unwrap_or(0) >= cap
        {
            let oldest = tracker
                .conns
                .iter()
                .filter(|(_, t)| t.peer == peer && !t.conn.has_answered())
                .map(|(id, _)| *id)
                .min();
            let Some(oldest) = oldest else {
                return Admission::PeerFull;
            };
            if let Some(Tracked {
                abort: Some(abort), ..
            }) = tracker.remove(oldest)
            {
                abort.abort();
            }
            Counters::add(&self.counters.evicted);
            evicted = true;
        }
        if !evicted && tracker.conns.len() >= self.limits.max_connections {
            return Admission::Full;
        }
        let id = tracker.next;
        tracker.next += 1;
        let conn = Arc::new(ConnState::new(self.limits, Arc::clone(&self.counters)));
        tracker.conns.insert(
            id,
            Tracked {
                peer,
                conn: Arc::clone(&conn),
                abort: None,
            },
        );
        *tracker.per_peer.entry(peer).or_insert(0) += 1;
        Admission::Admit { id, conn, evicted }
    }
}

/// Accepts connections on `listener` and serves `app` on each, over TLS with `tls`, within
/// `limits`, until `shutdown` fires (or its sender is dropped); then stops accepting, gives
/// requests in flight the shutdown grace, drops the connections still open and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ConnectionLimits,
    counters: Arc<Counters>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let server = Server {
        limits,
        counters: Arc::clone(&counters),
        tracker: Arc::new(Mutex::new(Tracker::default())),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let (mut full_log, mut peer_log, mut evict_log, mut accept_log) = (
        LogThrottle::new(),
        LogThrottle::new(),
        LogThrottle::new(),
        LogThrottle::new(),
    );
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                // One peer whether it comes over IPv4 or as an IPv4-mapped IPv6 address.
                Ok((tcp, peer)) => match server.admit(peer.ip().to_canonical()) {
                    Admission::Admit { id, conn, evicted } => {
                        if evicted && let Some(since) = evict_log.due() {
                            tracing::warn!(
                                peer = %peer.ip(),
                                evicted = since,
                                "a peer reached its connection cap: its oldest unanswered \
                                 connections are closed for its new ones (logged at most once \
                                 a minute; `evicted` counts them since the last line)"
                            );
                        }
                        Counters::add(&counters.accepted);
                        counters.open.fetch_add(1, Ordering::Relaxed);
                        let registration = Registration {
                            tracker: Arc::clone(&server.tracker),
                            id,
                            counters: Arc::clone(&counters),
                        };
                        let abort = connections.spawn(connection(
                            tcp,
                            peer,
                            tls.clone(),
                            app.clone(),
                            conn,
                            registration,
                            stop_rx.clone(),
                        ));
                        if let Some(tracked) = lock(&server.tracker).conns.get_mut(&id) {
                            tracked.abort = Some(abort);
                        }
                    }
                    Admission::PeerFull => {
                        drop(tcp);
                        Counters::add(&counters.refused);
                        if let Some(since) = peer_log.due() {
                            tracing::warn!(
                                peer = %peer.ip(),
                                cap = limits.max_connections_per_peer,
                                refused = since,
                                "a peer reached its connection cap: refusing its new \
                                 connections (logged at most once a minute; `refused` counts \
                                 them since the last line)"
                            );
                        }
                    }
                    Admission::Full => {
                        drop(tcp);
                        Counters::add(&counters.refused);
                        if let Some(since) = full_log.due() {
                            tracing::warn!(
                                cap = limits.max_connections,
                                refused = since,
                                "connection cap reached: refusing new connections (logged at \
                                 most once a minute; `refused` counts them since the last line)"
                            );
                        }
                    }
                },
                Err(e) => {
                    // Out of descriptors and the like: wait a little instead of spinning.
                    if let Some(since) = accept_log.due() {
                        tracing::warn!(error = %e, failures = since, "accepting a connection failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            grace = ?limits.shutdown_grace,
            "shutdown grace over: dropping the connections still open"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    conn: Arc<ConnState>,
    registration: Registration,
    mut stop: watch::Receiver<bool>,
) {
    let _registration = registration;
    let _ = tcp.set_nodelay(true);
    let Some(acceptor) = tls else {
        return serve_http(
            GuardedIo::new(tcp, Arc::clone(&conn)),
            peer,
            None,
            app,
            conn,
            stop,
        )
        .await;
    };
    let handshake = tokio::select! {
        handshake = tls::handshake(&acceptor, tcp, conn.limits.handshake_timeout) => handshake,
        _ = stop.changed() => return,
    };
    match handshake {
        Ok((stream, terminal)) => {
            conn.ready();
            let io = GuardedIo::new(stream, Arc::clone(&conn));
            serve_http(io, peer, terminal, app, conn, stop).await;
        }
        Err(tls::HandshakeFailure::TimedOut) => conn.timed_out("handshake"),
        Err(tls::HandshakeFailure::Refused) => {}
    }
}

/// Serves HTTP/1.1 on one connection. Every request carries the peer address as
/// `ConnectInfo<SocketAddr>` and, with a client certificate, its [`ClientTerminal`].
async fn serve_http<S>(
    io: GuardedIo<S>,
    peer: SocketAddr,
    terminal: Option<ClientTerminal>,
    app: Router,
    conn: Arc<ConnState>,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = TowerToHyperService::new(app);
    let shutdown_conn = Arc::clone(&conn);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let handling = Handling::start(&conn);
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        if let Some(terminal) = &terminal {
            parts.extensions.insert(terminal.clone());
        }
        let body = DeadlineBody {
            inner: body,
            deadline: Instant::now() + conn.limits.body_timeout,
            timer: None,
            expired: false,
            conn: Arc::clone(&conn),
        };
        let response = app.call(hyper::Request::from_parts(parts, body));
        async move {
            let response = response.await;
            drop(handling);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The headers' deadline is the byte stream's (`GuardedIo`): hyper's own would also count
    // the idle time before a request.
    builder.timer(TokioTimer::new()).header_read_timeout(None);
    let served = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = stop.changed() => {
            if !shutdown_conn.is_handling() {
                // No request with the handlers (idle, or stalled in its headers): nothing to
                // let finish.
                return;
            }
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeouts_and_caps_are_refused() {
        assert_eq!(ConnectionLimits::default().validate(), Ok(()));
        let zero = ConnectionLimits {
            body_timeout: Duration::ZERO,
            ..ConnectionLimits::default()
        };
        assert_eq!(
            zero.validate(),
            Err(ConnectionLimitsError("the body timeout"))
        );
        let no_peer_cap = ConnectionLimits {
            max_connections_per_peer: None,
            shutdown_grace: Duration::ZERO,
            ..ConnectionLimits::default()
        };
        assert_eq!(no_peer_cap.validate(), Ok(()));
        let zero_peer_cap = ConnectionLimits {
            max_connections_per_peer: Some(0),
            ..ConnectionLimits::default()
        };
        assert!(zero_peer_cap.validate().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_log_throttle_reports_once_a_minute_with_the_count() {
        let mut throttle = LogThrottle::new();
        assert_eq!(throttle.due(), Some(1));
        for _ in 0..999 {
            assert_eq!(throttle.due(), None);
        }
        tokio::time::advance(LogThrottle::INTERVAL).await;
        assert_eq!(throttle.due(), Some(1000));
    }

    /// Counts its wakes.
    struct CountingWaker(AtomicU64);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn read_deadlines_follow_the_phase() {
        let limits = ConnectionLimits::default();
        let conn = ConnState::new(limits, Arc::default());
        let wakes = Arc::new(CountingWaker(AtomicU64::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&wakes));
        let start = Instant::now();
        assert_eq!(
            conn.read_deadline(&waker),
            Some(start + limits.header_timeout)
        );
        conn.request_started();
        assert_eq!(conn.read_deadline(&waker), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(wakes.0.load(Ordering::Relaxed), 0);
        conn.request_answered();
        // The read that waited without a deadline is woken to take up the idle one.
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
        let answered = Instant::now();
        assert_eq!(
            conn.read_deadline(&waker),
            Some(answered + limits.idle_timeout)
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        conn.bytes_read();
        assert_eq!(
            conn.read_deadline(&waker),
            Some(Instant::now() + limits.header_timeout)
        );
        assert!(conn.has_answered());
    }
}
