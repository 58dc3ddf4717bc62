//! The gateway's side of a client connection: a TCP stream that gives up on a keep-alive
//! connection whose next request head does not arrive in time.
//!
//! actix-http times only a connection's first request head (`client_request_timeout`); after
//! an answer its keep-alive timer waits for the next request, and stops at that request's first
//! byte. A client that sent one quick request and then the next head a byte every few seconds
//! held the connection, one of `server.max_connections`, for as long as it liked (slowloris
//! with one request of warm-up). The app marks each request's start and answer on the
//! connection's [`Watch`] (see `crate::app`); between an answer and the next request's start,
//! [`GuardedStream`] reads only until the keep-alive plus `server.request_timeout` have passed,
//! then ends the connection. While a request is being handled nothing is timed here: its body
//! has its own deadline (`read_body`), and a handler may wait for the store.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How long an idle keep-alive connection waits for its next request (actix's default).
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// What the app tells the connection: when the next request head must be complete by.
#[derive(Debug)]
pub struct Watch {
    /// `None` from the connection's start to its first answer (actix times the first head)
    /// and while a request is being handled.
    next_head_by: Cell<Option<Instant>>,
    /// From an answer to the next head's end: the keep-alive, then the request time-out.
    between: Duration,
}

impl Watch {
    /// A request's head has arrived: nothing is timed here until it is answered.
    pub fn request_started(&self) {
        self.next_head_by.set(None);
    }

    /// A request was answered: the next head must be complete within the keep-alive and the
    /// request time-out.
    pub fn answered(&self) {
        self.next_head_by.set(Some(Instant::now() + self.between));
    }
}

/// A client's TCP stream that reads the next request head only until its [`Watch`] says.
pub struct GuardedStream {
    io: TcpStream,
    watch: Rc<Watch>,
    /// Made at the first answer's next read that waits.
    timer: Option<Pin<Box<Sleep>>>,
    /// The deadline `timer` is set to.
    armed: Option<Instant>,
}

impl GuardedStream {
    /// Wraps a new connection; `request_timeout` is `server.request_timeout`.
    pub fn new(io: TcpStream, request_timeout: Duration) -> GuardedStream {
        GuardedStream {
            io,
            watch: Rc::new(Watch {
                next_head_by: Cell::new(None),
                between: KEEP_ALIVE + request_timeout,
            }),
            timer: None,
            armed: None,
        }
    }

    /// The watch the app marks requests on (put in the connection's data on connect).
    pub fn watch(&self) -> Rc<Watch> {
        self.watch.clone()
    }

    /// Whether the next head's deadline has passed; otherwise the task is woken when it does.
    /// Asked only when a read finds nothing to read: a trickling client's every byte is
    /// followed by such a read, and a read that finds data costs nothing here.
    fn late(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(by) = self.watch.next_head_by.get() else {
            return false;
        };
        if self.timer.is_none() {
            self.timer = Some(Box::pin(tokio::time::sleep_until(by)));
            self.armed = Some(by);
        }
        let Some(timer) = self.timer.as_mut() else {
            return false;
        };
        // Each answer moves the deadline later; the timer is left at the earlier one and moved
        // on when it fires, not at every answer (a reset per request cost ~180 instructions).
        if self.armed.is_some_and(|armed| armed > by) {
            timer.as_mut().reset(by);
            self.armed = Some(by);
        }
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        if self.armed == Some(by) {
            return true;
        }
        timer.as_mut().reset(by);
        self.armed = Some(by);
        timer.as_mut().poll(cx).is_ready()
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if read.is_pending() && this.late(cx) {
            // An end of stream: actix drops the connection (and any partial head) quietly.
            tracing::debug!("A keep-alive connection's next request head came too slowly.");
            metrics::counter!("hotline_slow_request_heads_total").increment(1);
            return Poll::Ready(Ok(()));
        }
        read
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
