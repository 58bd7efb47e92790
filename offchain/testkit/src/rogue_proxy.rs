//! [`RogueProxy`]: a compromised proxy for gateway tests. It holds a genuine proxy identity (the
//! kit's proxy TLS, so the gateway's handshake passes), but answers every inference itself: it names
//! a worker key of its own in `x-cocoon-worker-key`, signs the receipt with it over the exact bytes,
//! reports the charge it likes, and serves whatever certificate it likes for that key. Against a
//! gateway that trusts the header, such a receipt "verifies"; the gateway must verify the
//! certificate and quote itself.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cocoon_attestation as att;
use cocoon_attestation::provider::simulated::SimulatedProvider;
use cocoon_daemon::serve::{HttpVersion, ServeOptions, serve};
use cocoon_daemon::shutdown::Shutdown;
use cocoon_daemon::tls::HopTls;
use cocoon_protocol::{Receipt, Usage, headers, wire};
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::{HeaderMap, Request, Response};
use sha2::{Digest, Sha256};

use crate::NetworkError;

/// The certificate the rogue proxy serves for its worker key.
#[derive(Debug, Clone)]
pub enum RogueCertificate {
    /// A well-formed worker certificate for the key, with no quote at all.
    Unattested,
    /// A worker certificate with a simulated quote of this image label (allowed or not).
    Simulated(String),
    /// None: the certificate path answers 404.
    Missing,
}

/// What the rogue proxy does.
#[derive(Debug, Clone)]
pub struct RogueOptions {
    /// The certificate it serves for its worker key.
    pub certificate: RogueCertificate,
    /// The `x-cocoon-charged-nanoton` it reports (default: the receipt's cost).
    pub charged_nano: Option<String>,
    /// The receipt's `cost_nano`.
    pub cost_nano: u128,
}

impl Default for RogueOptions {
    fn default() -> Self {
        RogueOptions {
            certificate: RogueCertificate::Unattested,
            charged_nano: None,
            cost_nano: 7000,
        }
    }
}

/// A running rogue proxy.
#[derive(Debug)]
pub struct RogueProxy {
    /// Its client listener.
    pub addr: SocketAddr,
    /// The worker key it names and signs receipts with.
    pub worker_key: [u8; 32],
    shutdown: Shutdown,
}

/// The answer body, then the receipt and charge as trailers.
struct TrailerBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for TrailerBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

const ANSWER: &[u8] = b"{\"id\":\"rogue\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"made up\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}";

struct State {
    key: SigningKey,
    /// The image its receipts name (the simulated quote's, when it has one).
    image_hash: [u8; 32],
    certificate: Option<Bytes>,
    options: RogueOptions,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl State {
    async fn answer(&self, req: Request<Incoming>) -> Response<TrailerBody> {
        let path = req.uri().path().to_owned();
        let worker_key = self.key.verifying_key().to_bytes();
        if path == wire::worker_certificate_path(&worker_key) {
            return match &self.certificate {
                Some(der) => plain(200, der.clone()),
                None => plain(404, Bytes::from_static(b"no such worker")),
            };
        }
        if !path.starts_with("/v1/") {
            return plain(404, Bytes::from_static(b"not found"));
        }
        let request = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(400, Bytes::new()),
        };
        let model = serde_json::from_slice::<serde_json::Value>(&request)
            .ok()
            .and_then(|v| v.get("model")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        let receipt = Receipt {
            request_sha256: Sha256::digest(&request).into(),
            response_sha256: Sha256::digest(ANSWER).into(),
            model,
            model_hash: [0; 32],
            usage: Usage {
                prompt: 3,
                cached: 0,
                completion: 4,
                reasoning: 0,
            },
            coefficient: 1000,
            price_per_token: 1000,
            cost_nano: self.options.cost_nano,
            timestamp: unix_now(),
            image_hash: self.image_hash,
            worker_key,
        }
        .sign(&self.key);
        let mut trailers = HeaderMap::new();
        let charged = self
            .options
            .charged_nano
            .clone()
            .unwrap_or_else(|| self.options.cost_nano.to_string());
        for (name, value) in [
            (headers::RECEIPT, receipt.to_wire()),
            (headers::CHARGED_NANO, charged),
        ] {
            if let Ok(v) = value.parse() {
                trailers.insert(name, v);
            }
        }
        let mut resp = Response::new(TrailerBody {
            data: Some(Bytes::from_static(ANSWER)),
            trailers: Some(trailers),
        });
        let h = resp.headers_mut();
        for (name, value) in [
            ("content-type", "application/json".to_owned()),
            (headers::WORKER_KEY, hex::encode(worker_key)),
            (headers::WORKER_INSECURE, "0".to_owned()),
        ] {
            if let Ok(v) = value.parse() {
                h.insert(name, v);
            }
        }
        resp
    }
}

fn plain(status: u16, body: Bytes) -> Response<TrailerBody> {
    let mut resp = Response::new(TrailerBody {
        data: Some(body),
        trailers: None,
    });
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    resp
}

impl RogueProxy {
    /// Starts on 127.0.0.1 with `tls` (a proxy identity the gateway accepts) and a fresh worker key.
    pub async fn start(
        tls: Arc<dyn HopTls>,
        options: RogueOptions,
    ) -> Result<RogueProxy, NetworkError> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        let issue = |provider: Option<&dyn att::QuoteProvider>| {
            att::Credential::issue(
                att::Role::Worker,
                &key,
                provider,
                now - 60,
                Duration::from_secs(3600),
                BTreeMap::new(),
            )
            .map(|c| Bytes::copy_from_slice(c.cert_der()))
            .map_err(NetworkError::tls)
        };
        let certificate = match &options.certificate {
            RogueCertificate::Unattested => Some(issue(None)?),
            RogueCertificate::Simulated(label) => {
                let provider = SimulatedProvider::new(label);
                Some(issue(Some(&provider))?)
            }
            RogueCertificate::Missing => None,
        };
        let image_hash = match &options.certificate {
            RogueCertificate::Simulated(label) => SimulatedProvider::new(label).image_hash(),
            _ => [0; 32],
        };
        let worker_key = key.verifying_key().to_bytes();
        let state = Arc::new(State {
            key,
            image_hash,
            certificate,
            options,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = Shutdown::new();
        let options = ServeOptions::tls(tls, HttpVersion::Http2);
        tokio::spawn(serve(listener, options, shutdown.clone(), move |_peer| {
            let state = state.clone();
            Some(hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(state.answer(req).await) }
            }))
        }));
        Ok(RogueProxy {
            addr,
            worker_key,
            shutdown,
        })
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.shutdown.trigger();
    }
}
