//! Generates the gRPC server and client for `proto/gateway.proto`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/gateway.proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/gateway.proto"], &["proto"])?;
    Ok(())
}
