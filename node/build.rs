//! Generates the gRPC servers and clients for `proto/gateway.proto` and
//! `proto/bench.proto`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/gateway.proto");
    println!("cargo:rerun-if-changed=proto/bench.proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/gateway.proto", "proto/bench.proto"], &["proto"])?;
    Ok(())
}
