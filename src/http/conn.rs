//! The gateway's side of a client connection: a TCP stream that gives up on a keep-alive
//! connection whose next request head does not arrive in time, and that gives the 400 actix
//! answers a head it cannot parse the JSON body of every other refusal.
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

/// A client's TCP stream that reads the next request head only until its [`Watch`] says,
/// and gives actix-http's bare 400 a JSON body (see [`bare_400`]).
pub struct GuardedStream {
    io: TcpStream,
    watch: Rc<Watch>,
    /// Made at the first answer's next read that waits.
    timer: Option<Pin<Box<Sleep>>>,
    /// The deadline `timer` is set to.
    armed: Option<Instant>,
    /// The answer written instead of a bare 400: its bytes, how many are written, and the
    /// length of the bare 400 it stands for (reported written once it is).
    instead: Option<(Vec<u8>, usize, usize)>,
}

/// The status line and the length header of the 400 actix-http 3 answers a request head it
/// cannot parse with (`Response::bad_request().drop_body()` in its h1 dispatcher, sent before
/// any service runs: there is no hook for its body). The gateway's own 400s all have a body.
const BARE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";

/// The length of the bare 400 at the start of `buf` (its head, up to the blank line), if that
/// is what `buf` begins with: the status line of [`BARE_400`] and `content-length: 0`.
fn bare_400(buf: &[u8]) -> Option<usize> {
    if !buf.starts_with(BARE_400) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = &buf[..end];
    head.windows(21)
        .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length: 0\r\n"))
        .then_some(end)
}

/// The answer to a request head that is no HTTP (a negative or doubled Content-Length, a path
/// over actix's limit, a TLS handshake on the plain port): the stable JSON error every other
/// refusal has, 400 `invalid_request`, and the connection closed (actix closes it).
fn invalid_request() -> Vec<u8> {
    let message = "请求格式无效，请检查请求行和请求头。";
    let body = serde_json::json!({
        "status": "rejected",
        "error": {"code": "invalid_request", "message": message},
        "message": message,
    })
    .to_string();
    let mut out = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
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
            instead: None,
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
    /// Writes `buf`, except a bare 400 at its start ([`bare_400`]), which goes out as
    /// [`invalid_request`]: actix-http writes its buffer here (one `poll_write` at a time, again
    /// from where it stopped), so the swap is whole whatever the socket takes per call. A 400
    /// behind another answer in the same buffer (a pipelined request) stays bare. The check is
    /// a comparison of the first bytes of each write.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.instead.is_none() {
            match bare_400(buf) {
                Some(len) => this.instead = Some((invalid_request(), 0, len)),
                None => return Pin::new(&mut this.io).poll_write(cx, buf),
            }
        }
        let Some((bytes, done, len)) = this.instead.as_mut() else {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        };
        while *done < bytes.len() {
            match Pin::new(&mut this.io).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => *done += n,
                other => return other,
            }
        }
        let len = *len;
        this.instead = None;
        Poll::Ready(Ok(len))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // actix-http's h1 dispatcher writes with `poll_write`; should one write vectored, its
        // first slice gets the same check.
        let this = self.get_mut();
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if this.instead.is_some() || bare_400(first).is_some() => {
                Pin::new(this).poll_write(cx, first)
            }
            _ => Pin::new(&mut this.io).poll_write_vectored(cx, bufs),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Only actix's bare 400 is swapped: not a 400 of ours (it has a body), nor another status.
    #[test]
    fn only_the_bare_400_is_recognised() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\
                     date: Mon, 07 Dec 2026 17:00:00 GMT\r\n\r\n";
        assert_eq!(bare_400(bare), Some(bare.len()));
        let mut two = bare.to_vec();
        two.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(bare_400(&two), Some(bare.len()));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 95\r\n\r\n{";
        assert_eq!(bare_400(ours), None);
        let other = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(bare_400(other), None);
        assert_eq!(
            bare_400(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n"),
            None
        );
        let answer = String::from_utf8(invalid_request()).unwrap_or_default();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{answer}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(v["error"]["code"], "invalid_request", "{answer}");
        assert_eq!(v["status"], "rejected", "{answer}");
    }
}
