//! One body wrapper for every hop that watches a response as it forwards it: the worker hashes and
//! signs, the proxy charges on the receipt trailer, the gateway hashes and verifies. Each supplies
//! an [`Observer`]; [`ObservingBody`] does the polling, the optional deadline and the ending.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::HeaderMap;
use hyper::body::{Frame, SizeHint};

use crate::http::{Body, BoxError};

/// Trailers worked out after the inner body ended (a ledger commit, say).
pub type LaterTrailers = Pin<Box<dyn Future<Output = Option<HeaderMap>> + Send>>;

/// What the wrapper does after the inner body ended, failed or sent trailers.
pub enum Ending {
    /// Keep reading the inner body (the observer swallowed what it got).
    Continue,
    /// End the body here.
    Done,
    /// Send one last frame, then end.
    Frame(Frame<Bytes>),
    /// Fail the body with this error.
    Error(BoxError),
    /// Await these trailers, send them if any, then end.
    Later(LaterTrailers),
}

/// Sees every frame of a forwarded body.
pub trait Observer: Send + Unpin + 'static {
    /// A data frame: the bytes to forward (`None`: nothing to forward for it).
    fn data(&mut self, data: Bytes) -> Option<Bytes>;
    /// The inner body's trailers.
    fn trailers(&mut self, trailers: HeaderMap) -> Ending;
    /// The inner body ended.
    fn end(&mut self) -> Ending;
    /// The inner body failed.
    fn error(&mut self, error: BoxError) -> Ending;
    /// The deadline passed before the body ended (only with [`ObservingBody::with_deadline`]).
    fn deadline(&mut self) -> Ending {
        Ending::Error("deadline passed".into())
    }
}

enum State {
    Forwarding,
    Finishing(LaterTrailers),
    Done,
}

/// Forwards `inner` through an [`Observer`].
pub struct ObservingBody<B, O> {
    inner: B,
    observer: O,
    state: State,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B, O: Observer> ObservingBody<B, O> {
    /// Wraps `inner`.
    pub fn new(inner: B, observer: O) -> Self {
        ObservingBody {
            inner,
            observer,
            state: State::Forwarding,
            deadline: None,
        }
    }

    /// Calls [`Observer::deadline`] if the body is still forwarding at `at`.
    pub fn with_deadline(mut self, at: tokio::time::Instant) -> Self {
        self.deadline = Some(Box::pin(tokio::time::sleep_until(at)));
        self
    }

    /// The observer (tests, and callers reading what it saw).
    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// Applies an ending; `None` means keep reading.
    fn apply(&mut self, ending: Ending) -> Option<Option<Result<Frame<Bytes>, BoxError>>> {
        match ending {
            Ending::Continue => None,
            Ending::Done => {
                self.state = State::Done;
                Some(None)
            }
            Ending::Frame(frame) => {
                self.state = State::Done;
                Some(Some(Ok(frame)))
            }
            Ending::Error(e) => {
                self.state = State::Done;
                Some(Some(Err(e)))
            }
            Ending::Later(fut) => {
                self.state = State::Finishing(fut);
                None
            }
        }
    }
}

impl<B, O> ObservingBody<B, O>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
    O: Observer,
{
    /// Boxes the body as every hop's [`Body`].
    pub fn boxed(self) -> Body {
        http_body_util::BodyExt::boxed_unsync(self)
    }
}

impl<B, O> hyper::body::Body for ObservingBody<B, O>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    O: Observer,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // Every field is Unpin (the inner body is required to be, the futures are boxed).
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Finishing(fut) => {
                    let trailers = std::task::ready!(fut.as_mut().poll(cx));
                    this.state = State::Done;
                    return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                }
                State::Forwarding => {}
            }
            if let Some(deadline) = this.deadline.as_mut()
                && deadline.as_mut().poll(cx).is_ready()
            {
                this.deadline = None;
                let ending = this.observer.deadline();
                match this.apply(ending) {
                    Some(out) => return Poll::Ready(out),
                    None => continue,
                }
            }
            let ending = match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => match this.observer.data(data) {
                        Some(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                        None => continue,
                    },
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => this.observer.trailers(trailers),
                        Err(_) => continue,
                    },
                },
                Some(Err(e)) => this.observer.error(e.into()),
                None => this.observer.end(),
            };
            if let Some(out) = this.apply(ending) {
                return Poll::Ready(out);
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A body that holds `guard` until it is dropped (the serve loop's per-request activity mark).
pub struct Guarded<B, G> {
    inner: B,
    _guard: G,
}

impl<B, G> Guarded<B, G> {
    /// Wraps `inner`, keeping `guard` alive as long as the body.
    pub fn new(inner: B, guard: G) -> Self {
        Guarded {
            inner,
            _guard: guard,
        }
    }
}

impl<B, G> hyper::body::Body for Guarded<B, G>
where
    B: hyper::body::Body + Unpin,
    G: Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    /// Upper-cases data, counts bytes, answers trailers with its own.
    #[derive(Default)]
    struct Shout {
        seen: usize,
    }

    impl Observer for Shout {
        fn data(&mut self, data: Bytes) -> Option<Bytes> {
            self.seen += data.len();
            Some(Bytes::from(data.to_ascii_uppercase()))
        }
        fn trailers(&mut self, _: HeaderMap) -> Ending {
            Ending::Continue
        }
        fn end(&mut self) -> Ending {
            let mut t = HeaderMap::new();
            t.insert("x-seen", self.seen.to_string().parse().unwrap());
            Ending::Later(Box::pin(async move { Some(t) }))
        }
        fn error(&mut self, e: BoxError) -> Ending {
            Ending::Error(e)
        }
    }

    fn frames(parts: Vec<Frame<Bytes>>) -> impl hyper::body::Body<Data = Bytes, Error = BoxError> {
        let items: Vec<Result<Frame<Bytes>, BoxError>> = parts.into_iter().map(Ok).collect();
        StreamBody::new(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn the_observer_sees_and_shapes_every_frame() {
        let inner = frames(vec![
            Frame::data(Bytes::from_static(b"ab")),
            Frame::trailers(HeaderMap::new()),
            Frame::data(Bytes::from_static(b"c")),
        ]);
        let body = ObservingBody::new(inner, Shout::default());
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(trailers.get("x-seen").unwrap(), "3");
        assert_eq!(&collected.to_bytes()[..], b"ABC");
    }

    #[tokio::test]
    async fn the_deadline_ends_a_stalled_body() {
        let stalled = StreamBody::new(futures::stream::pending::<Result<Frame<Bytes>, BoxError>>());
        let at = tokio::time::Instant::now() + std::time::Duration::from_millis(20);
        let body = ObservingBody::new(stalled, Shout::default()).with_deadline(at);
        let Err(err) = body.collect().await else {
            panic!("a stalled body must fail at its deadline");
        };
        assert!(err.to_string().contains("deadline"), "{err}");
    }
}
