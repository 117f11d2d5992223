//! The HTTP listener of `ocpoll serve`: slow and idle clients are cut off, and connections are capped.
//!
//! `axum::serve` configures nothing (no header-read timeout, no idle timeout), and hyper's own header-read timeout
//! starts when a keep-alive connection goes idle, so that it cannot tell an idle connection from a slow one.
//! Here every accepted connection is a [`TimedIo`] that knows, through the [`track_requests`] middleware, whether
//! a request is being served on it:
//!
//! - while none is, a read that waits is given a deadline: the header timeout from the first byte of the next
//!   request's head (or from the accept, on a new connection), else the idle timeout from the end of the last
//!   answer; past it the read fails and hyper closes the connection (a slowloris client, an idle keep-alive one);
//! - while one is, the connection has no deadline of its own: the request timeout of the API bounds the request
//!   ([`crate::api::limits`]).
//!
//! At most `max_connections` connections are open at once: the listener takes a slot before it accepts, so that
//! further clients wait in the kernel's backlog.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send the head of a request once started (and to start one on a new connection).
    pub header_timeout: Duration,
    /// Time a keep-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes (then finishes the requests under way).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener =
        GuardedListener { inner: listener, slots: Arc::new(Semaphore::new(limits.max_connections.max(1))), limits };
    let app = app.layer(middleware::from_fn(track_requests));
    axum::serve(listener, app.into_make_service_with_connect_info::<Connection>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// What a connection and the requests served on it share.
#[derive(Debug)]
struct State {
    /// Requests being served.
    in_flight: usize,
    /// Whether a request was served (a new connection has the header timeout to start one).
    served: bool,
    /// When the first byte of the next request's head came, while no request is served.
    head_started: Option<Instant>,
    /// When the connection last had something to do: accepted, an answer given, a byte written.
    active: Instant,
    /// A request ended and no read was polled since: hyper, once it has written the answer, waits for the socket
    /// without polling a read (so the idle deadline would never be armed); a write wakes the connection's task
    /// until a read is polled.
    rearm: bool,
}

/// The connection a request came on (a request extension, through `ConnectInfo`).
#[derive(Debug, Clone)]
pub struct Connection(Arc<Mutex<State>>);

impl Connection {
    fn new() -> Connection {
        Connection(Arc::new(Mutex::new(State {
            in_flight: 0,
            served: false,
            head_started: None,
            active: Instant::now(),
            rearm: false,
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // the state stays consistent whatever panicked while holding it
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The deadline of a read that waits now, if any.
    fn read_deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let mut s = self.state();
        if s.in_flight > 0 {
            return None;
        }
        s.rearm = false;
        Some(match s.head_started {
            Some(t) => t + limits.header_timeout,
            None if !s.served => s.active + limits.header_timeout,
            None => s.active + limits.idle_timeout,
        })
    }

    fn read_some(&self) {
        let mut s = self.state();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
        }
    }

    fn wrote_some(&self) {
        self.state().active = Instant::now();
    }

    /// Wakes the connection's task when a request ended and no read was polled since (see `State::rearm`).
    fn rearm(&self, cx: &Context<'_>) {
        if self.state().rearm {
            cx.waker().wake_by_ref();
        }
    }
}

impl Connected<IncomingStream<'_, GuardedListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, GuardedListener>) -> Self {
        stream.io().connection.clone()
    }
}

/// Counts the request as served on its connection from its head to its answer.
async fn track_requests(request: Request, next: Next) -> Response {
    let connection = request.extensions().get::<ConnectInfo<Connection>>().map(|c| c.0.clone());
    let _serving = connection.map(|c| {
        {
            let mut s = c.state();
            s.in_flight += 1;
            s.served = true;
            s.head_started = None;
        }
        Serving(c)
    });
    next.run(request).await
}

/// A request being served; its end (also when it is dropped) makes the connection idle again.
struct Serving(Connection);

impl Drop for Serving {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        s.active = Instant::now();
        s.rearm = s.in_flight == 0;
    }
}

/// A TCP listener that takes a connection slot before it accepts.
pub struct GuardedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    limits: ConnectionLimits,
}

impl Listener for GuardedListener {
    type Io = TimedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TimedIo, SocketAddr) {
        // the semaphore is never closed; were it, connections would go uncounted rather than refused
        let slot = self.slots.clone().acquire_owned().await.ok();
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let io = TimedIo {
                        inner: stream,
                        connection: Connection::new(),
                        limits: self.limits,
                        timer: None,
                        _slot: slot,
                    };
                    return (io, addr);
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // e.g. too many open files: wait rather than spin
                    tracing::error!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection whose waiting reads have the deadline of [`Connection::read_deadline`].
pub struct TimedIo {
    inner: TcpStream,
    connection: Connection,
    limits: ConnectionLimits,
    timer: Option<Pin<Box<Sleep>>>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl TimedIo {
    fn timed_out(&self) -> io::Error {
        let s = self.connection.state();
        let what = if s.head_started.is_some() || !s.served {
            format!("no request head within the header timeout of {:?}", self.limits.header_timeout)
        } else {
            format!("idle for the idle timeout of {:?}", self.limits.idle_timeout)
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.connection.read_some();
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let Some(deadline) = self.connection.read_deadline(&self.limits) else {
            self.timer = None;
            return Poll::Pending;
        };
        if Instant::now() >= deadline {
            let e = self.timed_out();
            tracing::debug!(target: "ocpoll::http", error = %e, "closing a connection");
            return Poll::Ready(Err(e));
        }
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        if timer.as_mut().poll(cx).is_ready() {
            let e = self.timed_out();
            tracing::debug!(target: "ocpoll::http", error = %e, "closing a connection");
            return Poll::Ready(Err(e));
        }
        Poll::Pending
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.connection.wrote_some();
        }
        self.connection.rearm(cx);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.connection.wrote_some();
        }
        self.connection.rearm(cx);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.connection.rearm(cx);
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_read_has_the_header_timeout_until_a_request_is_served_then_the_idle_timeout() {
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1,
        };
        let c = Connection::new();
        let accepted = c.state().active;
        assert_eq!(c.read_deadline(&limits), Some(accepted + limits.header_timeout), "a new connection");
        c.read_some();
        let started = c.state().head_started.expect("the head started");
        assert_eq!(c.read_deadline(&limits), Some(started + limits.header_timeout), "a head under way");
        {
            let mut s = c.state();
            s.in_flight = 1;
            s.served = true;
            s.head_started = None;
        }
        let serving = Serving(c.clone());
        assert_eq!(c.read_deadline(&limits), None, "a request is served");
        c.read_some();
        assert!(c.state().head_started.is_none(), "a body is no head");
        drop(serving);
        let idle = c.state().active;
        assert_eq!(c.read_deadline(&limits), Some(idle + limits.idle_timeout), "idle between requests");
    }
}
