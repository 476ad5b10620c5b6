//! Database answers streamed as they are read: a query runs on one of a few low-priority query
//! threads and writes its JSON into chunks that go out while the next rows are read, so an
//! answer costs a few chunks of memory however many rows it has.
//!
//! Input: a question (a closure over a read-only connection and a [`Sink`]). Output: an HTTP
//! body. The query thread's permit is held until the body is complete or dropped; when the
//! body is dropped early (the client left, a deadline layer gave up) the query is interrupted
//! (`sqlite3_interrupt`) and counted as cancelled.

use std::io;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use http_body::Frame;
use rusqlite::{Connection, InterruptHandle};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::counters::ApiCounters;
use super::v1::V1Error;
use crate::store;

/// Bytes gathered before a chunk is sent.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks waiting for a slow client before the query thread waits too.
const QUEUE_CHUNKS: usize = 4;

/// The query threads: the database and how many queries may run at once.
#[derive(Debug)]
pub(super) struct QueryPool {
    db: PathBuf,
    permits: Arc<Semaphore>,
}

impl QueryPool {
    /// At most `workers` queries at once on `db`.
    pub(super) fn new(db: PathBuf, workers: usize) -> Self {
        Self {
            db,
            permits: Arc::new(Semaphore::new(workers)),
        }
    }
}

/// Where a question writes its answer (`io::Write`, so `serde_json` writes into it).
pub(super) struct Sink {
    tx: mpsc::Sender<Result<Bytes, V1Error>>,
    buf: Vec<u8>,
    cancel: Arc<AtomicBool>,
}

impl Sink {
    /// Whether the answer is no longer wanted.
    pub(super) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Break` once the answer is no longer wanted.
    pub(super) fn flow(&self) -> ControlFlow<()> {
        if self.cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn send(&mut self, item: Result<Bytes, V1Error>) -> io::Result<()> {
        // Waits while the client reads slowly; the response deadline ends the wait by
        // dropping the body (and so the receiver).
        self.tx.blocking_send(item).map_err(|_| {
            self.cancel.store(true, Ordering::Relaxed);
            io::Error::new(io::ErrorKind::BrokenPipe, "the client left")
        })
    }

    /// Sends what is left, or the error (which a client still waiting for the status gets
    /// as one; a client already reading the body gets a broken answer).
    fn finish(mut self, result: Result<(), V1Error>) {
        let item = match result {
            Ok(()) => Ok(Bytes::from(std::mem::take(&mut self.buf))),
            Err(_) if self.cancelled() => return,
            Err(e) => Err(e),
        };
        let _ = self.send(item);
    }
}

impl io::Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.cancelled() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "cancelled"));
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
            self.send(Ok(Bytes::from(chunk)))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Interrupts the query and counts it as cancelled when dropped before the answer ended.
struct Cancel {
    flag: Arc<AtomicBool>,
    interrupt: InterruptHandle,
    counters: Arc<ApiCounters>,
    ended: bool,
}

impl Drop for Cancel {
    fn drop(&mut self) {
        if !self.ended {
            self.flag.store(true, Ordering::Relaxed);
            self.interrupt.interrupt();
            ApiCounters::inc(&self.counters.queries_cancelled);
        }
    }
}

/// The streamed body: the first chunk (already read, to choose the status), then the rest.
struct Rows {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Result<Bytes, V1Error>>,
    cancel: Cancel,
}

impl http_body::Body for Rows {
    type Data = Bytes;
    type Error = V1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, V1Error>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Poll::Ready(Some(Err(e))) => {
                this.cancel.ended = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.cancel.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs `ask` on a query thread (waiting for a free one) and answers with the JSON it writes,
/// streamed. An error before the first chunk is sent becomes the answer's status.
pub(super) async fn answer<F>(
    pool: &QueryPool,
    counters: &Arc<ApiCounters>,
    ask: F,
) -> Result<Response, V1Error>
where
    F: FnOnce(&Connection, &mut Sink) -> Result<(), V1Error> + Send + 'static,
{
    let permit = Arc::clone(&pool.permits)
        .acquire_owned()
        .await
        .map_err(|_| V1Error::Task)?;
    let (tx, mut rx) = mpsc::channel(QUEUE_CHUNKS);
    let (opened_tx, opened_rx) = oneshot::channel();
    let flag = Arc::new(AtomicBool::new(false));
    let (db, thread_flag) = (pool.db.clone(), Arc::clone(&flag));
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let conn = match store::open_read_only(&db) {
            Ok(c) => c,
            Err(e) => return drop(opened_tx.send(Err(V1Error::Store(e)))),
        };
        if opened_tx.send(Ok(conn.get_interrupt_handle())).is_err() {
            return; // the request was given up while the database was opened
        }
        let mut sink = Sink {
            tx,
            buf: Vec::with_capacity(CHUNK_BYTES),
            cancel: thread_flag,
        };
        let result = ask(&conn, &mut sink);
        sink.finish(result);
    });
    let interrupt = opened_rx.await.map_err(|_| V1Error::Task)??;
    let mut cancel = Cancel {
        flag,
        interrupt,
        counters: Arc::clone(counters),
        ended: false,
    };
    let first = match rx.recv().await {
        Some(Ok(first)) => first,
        Some(Err(e)) => {
            cancel.ended = true;
            return Err(e);
        }
        None => return Err(V1Error::Task),
    };
    let mut response = Response::new(Body::new(Rows {
        first: Some(first),
        rx,
        cancel,
    }));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
