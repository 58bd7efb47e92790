//! Body types and response helpers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

/// Errors carried inside bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type every hop uses.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body with these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A JSON response.
pub fn json_response(status: u16, body: Vec<u8>) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(full(body));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Most bytes of an oversized body read and discarded before answering (see [`read_limited`]).
pub const DRAIN_CAP: usize = 64 << 20;
/// Longest time spent discarding an oversized body.
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads a body up to `limit` bytes; `Ok(None)` when it is larger.
///
/// An oversized body is still read to its end and discarded (up to [`DRAIN_CAP`] bytes or
/// [`DRAIN_TIME`]): an HTTP/1.1 server that answers 413 while the client is still sending closes the
/// connection under it, and the client then sees a broken pipe instead of the 413.
pub async fn read_limited<B>(mut body: B, limit: usize) -> Result<Option<Bytes>, B::Error>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > limit {
                let seen = buf.len() + data.len();
                drop(buf);
                let _ = tokio::time::timeout(DRAIN_TIME, drain(body, seen)).await;
                return Ok(None);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Some(buf.freeze()))
}

/// Discards the rest of a body, stopping at [`DRAIN_CAP`] bytes or the first error.
async fn drain<B>(mut body: B, mut seen: usize)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    while seen <= DRAIN_CAP {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen = seen.saturating_add(data.len());
                }
            }
            Some(Err(_)) | None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body of `left` 1 KiB chunks that counts how many were read.
    struct Chunks {
        left: usize,
        read: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            self.left -= 1;
            self.read.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(vec![
                b'x';
                1024
            ])))))
        }
    }

    fn body(chunks: usize) -> (Chunks, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let b = Chunks {
            left: chunks,
            read: read.clone(),
        };
        (b, read)
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_returned_whole() {
        let (b, _) = body(4);
        let got = read_limited(b, 4096).await.expect("infallible");
        assert_eq!(got.map(|b| b.len()), Some(4096));
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_but_read_to_its_end() {
        // 2 MiB against a 64 KiB limit: refused, and every chunk consumed so the 413 can be sent
        // on a connection the client is not still writing into.
        let (b, read) = body(2048);
        assert!(
            read_limited(b, 64 << 10)
                .await
                .expect("infallible")
                .is_none()
        );
        assert_eq!(read.load(std::sync::atomic::Ordering::SeqCst), 2048);
    }

    #[tokio::test]
    async fn draining_stops_at_the_cap() {
        let cap_chunks = DRAIN_CAP / 1024;
        let (b, read) = body(cap_chunks * 2);
        assert!(read_limited(b, 1024).await.expect("infallible").is_none());
        let n = read.load(std::sync::atomic::Ordering::SeqCst);
        assert!(n > cap_chunks && n < cap_chunks + 4, "read {n} chunks");
    }
}
