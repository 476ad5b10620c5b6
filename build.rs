//! Generates the KServe v2 gRPC client (`inference` package) from `proto/grpc_predict_v2.proto`.
//! Needs `protoc` (Debian `protobuf-compiler`, installed by scripts/setup.sh).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/grpc_predict_v2.proto");
    tonic_prost_build::configure()
        .build_server(false)
        // Tensors travel as `bytes::Bytes`: no copy between the HTTP/2 frame and the parser.
        .bytes(".inference")
        .compile_protos(&["proto/grpc_predict_v2.proto"], &["proto"])?;
    Ok(())
}
