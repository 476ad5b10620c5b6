//! The network side: one tonic client per endpoint (a cheap clone over one HTTP/2 channel), the
//! readiness + metadata probe, and one ModelInfer call with a deadline. Each call runs as a task
//! on the backend's tokio runtime and reports back as an [`Event`] over a bounded channel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tonic::transport::{Channel, Endpoint};

use super::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use super::proto::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ServerReadyRequest,
};
use super::tensor;
use crate::geometry::Detection;
use crate::infer::Io;

/// Largest message accepted from a server (outputs are a few KiB; this leaves room for bigger
/// detectors without letting a broken server exhaust memory).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A client of one endpoint.
pub type Client = GrpcInferenceServiceClient<Channel>;

/// Why a probe or a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No answer within the configured timeout.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// The gRPC call failed (connection refused, unavailable, server error...).
    #[error("{code:?}: {message}")]
    Status {
        /// gRPC status code.
        code: tonic::Code,
        /// Server or transport message.
        message: String,
    },
    /// The server answered but is not ready for this model.
    #[error("server or model not ready")]
    NotReady,
    /// The server's model does not match the model description.
    #[error("model metadata does not match the description: {0}")]
    Mismatch(String),
    /// The response could not be read.
    #[error("unusable response: {0}")]
    Response(String),
}

impl From<tonic::Status> for CallError {
    fn from(s: tonic::Status) -> Self {
        CallError::Status {
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}

/// What a task reports back to the detector thread.
#[derive(Debug)]
pub enum Event {
    /// A ModelInfer call finished.
    Infer {
        /// Endpoint index.
        endpoint: usize,
        /// The frame it was for.
        job: super::Job,
        /// The frame's person boxes, or why not.
        result: Result<Vec<Detection>, CallError>,
        /// Send to decoded response.
        round_trip: Duration,
        /// Time spent decoding the response into boxes.
        decode: Duration,
    },
    /// A probe finished.
    Probe {
        /// Endpoint index.
        endpoint: usize,
        /// Ready with matching metadata, or why not.
        result: Result<(), CallError>,
    },
}

/// A lazily connecting client for `host:port` (a dead endpoint does not fail here; its first
/// call does). Must be called inside the runtime.
pub fn connect(host_port: &str, timeout: Duration) -> Result<Client, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("http://{host_port}"))?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(GrpcInferenceServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES))
}

async fn with_deadline<T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(CallError::Timeout(timeout.as_millis() as u64)))
}

fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    // Sent as grpc-timeout, so the server can give up too.
    r.set_timeout(timeout);
    r
}

/// Server ready, then the model's metadata checked against the description.
pub(crate) async fn probe(
    mut client: Client,
    model: String,
    version: Option<String>,
    io: Arc<Io>,
    timeout: Duration,
) -> Result<(), CallError> {
    with_deadline(timeout, async move {
        let ready = client
            .server_ready(request(ServerReadyRequest {}, timeout))
            .await?
            .into_inner();
        if !ready.ready {
            return Err(CallError::NotReady);
        }
        let meta = client
            .model_metadata(request(
                ModelMetadataRequest {
                    name: model,
                    version: version.unwrap_or_default(),
                },
                timeout,
            ))
            .await?
            .into_inner();
        tensor::check_metadata(&io.desc, &io.decoder, &meta).map_err(CallError::Mismatch)
    })
    .await
}

/// Runs `probe` and reports it.
pub(crate) async fn probe_and_report(
    endpoint: usize,
    client: Client,
    model: String,
    version: Option<String>,
    io: Arc<Io>,
    timeout: Duration,
    events: Sender<Event>,
) {
    let result = probe(client, model, version, io, timeout).await;
    // The detector thread holds the receiver until it has collected every outstanding task.
    let _ = events.send(Event::Probe { endpoint, result });
}

/// One ModelInfer call; decodes the outputs into the frame's person boxes and reports.
pub(crate) async fn infer_and_report(
    endpoint: usize,
    mut client: Client,
    msg: ModelInferRequest,
    job: super::Job,
    io: Arc<Io>,
    timeout: Duration,
    events: Sender<Event>,
) {
    let sent = Instant::now();
    let answer: Result<ModelInferResponse, CallError> = with_deadline(timeout, async {
        Ok(client
            .model_infer(request(msg, timeout))
            .await?
            .into_inner())
    })
    .await;
    let decoding = Instant::now();
    let result = answer.and_then(|resp| {
        let t = tensor::read_outputs(&io.decoder, &resp).map_err(CallError::Response)?;
        io.decoder
            .decode(&t.views(), &job.mapping)
            .map_err(|e| CallError::Response(e.to_string()))
    });
    let decode = decoding.elapsed();
    let _ = events.send(Event::Infer {
        endpoint,
        job,
        result,
        round_trip: sent.elapsed(),
        decode,
    });
}
