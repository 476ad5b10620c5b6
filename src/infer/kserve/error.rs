//! Errors of the remote detector: why it could not start, and why one synchronous detection
//! failed.

use super::client::CallError;
use crate::infer::{DescriptionError, InferError};

/// Why the remote backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum KserveError {
    /// The model description is missing or invalid.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// The gRPC runtime could not start.
    #[error("cannot start the gRPC runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// An endpoint could not be turned into a gRPC channel.
    #[error("inference.endpoints: grpc://{endpoint}: {source}")]
    Endpoint {
        /// `host:port`.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// A server's model does not match the model description.
    #[error("grpc://{endpoint} model {model:?}: {message} (model description {description})")]
    Mismatch {
        /// `host:port`.
        endpoint: String,
        /// Model name on the server.
        model: String,
        /// What differs.
        message: String,
        /// The description file.
        description: String,
    },
    /// The local fallback engine could not start.
    #[error("local fallback: {0}")]
    Fallback(#[source] InferError),
}

/// Why [`super::RemoteEngine::detect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// No endpoint is up.
    #[error("no model server is up")]
    NoEndpoint,
    /// The picture does not fit the model input.
    #[error(transparent)]
    Frame(#[from] crate::infer::input::Unfit),
    /// The call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The answer could not be decoded.
    #[error(transparent)]
    Decode(#[from] crate::infer::DecodeError),
}
