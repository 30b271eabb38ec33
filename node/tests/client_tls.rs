//! TLS on the client ports (`gateway.tls_cert_file`, `gateway.tls_key_file`,
//! `gateway.tls_client_ca_file`): the gRPC gateway, the REST API and the
//! management port speak TLS only, a changed certificate is used without a
//! restart, client certificates are required when a client CA is set, and a
//! file that does not load stops the broker with a configuration error
//! naming it.

mod common;

use common::{free_port, http_get, http_response, run_waggle, runtime, Broker};
use node::gateway::proto::gateway_client::GatewayClient;
use node::gateway::proto::TopologyRequest;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Longest wait for the broker to start or to pick up a new certificate.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A certificate authority of the test.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for localhost and 127.0.0.1.
    fn server(&self) -> Leaf {
        self.leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A server certificate that expires at `not_after` (UNIX seconds).
    fn server_until(&self, not_after: i64) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(not_after as u64);
        self.sign(params)
    }

    fn client(&self) -> Leaf {
        self.leaf(
            vec!["client.test".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn leaf(&self, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Leaf {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// Where the broker's TLS files are.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
            client_ca: dir.join("client-ca.pem"),
        }
    }

    fn write(&self, leaf: &Leaf) {
        std::fs::write(&self.key, &leaf.key).unwrap();
        std::fs::write(&self.cert, &leaf.cert).unwrap();
    }

    fn env(&self, client_ca: bool) -> Vec<(&'static str, String)> {
        let path = |p: &PathBuf| p.to_str().unwrap().to_string();
        let mut env = vec![
            ("WAGGLE_GATEWAY_TLS_CERT_FILE", path(&self.cert)),
            ("WAGGLE_GATEWAY_TLS_KEY_FILE", path(&self.key)),
        ];
        if client_ca {
            env.push(("WAGGLE_GATEWAY_TLS_CLIENT_CA_FILE", path(&self.client_ca)));
        }
        env
    }
}

/// GET `path` over HTTPS on 127.0.0.1:`port`, trusting `ca`, presenting
/// `client` if given; `None` if the handshake or the request fails.
fn https_get(port: u16, path: &str, ca: &Ca, client: Option<&Leaf>) -> Option<(u16, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    // A server that closes without close_notify ends the read with an
    // error after the response: keep what arrived.
    let _ = stream.read_to_string(&mut text);
    http_response(&text)
}

/// Whether `Topology` answers over TLS trusting `ca`, presenting `client`.
fn grpc_topology(port: u16, ca: &Ca, client: Option<&Leaf>) -> Result<(), String> {
    runtime().block_on(async {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca.pem))
            .domain_name("localhost");
        if let Some(leaf) = client {
            tls = tls.identity(Identity::from_pem(&leaf.cert, &leaf.key));
        }
        let channel = Channel::from_shared(format!("https://127.0.0.1:{port}"))
            .unwrap()
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))?;
        GatewayClient::new(channel)
            .topology(TopologyRequest {})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

fn grpc_plaintext_topology(port: u16) -> Result<(), String> {
    runtime().block_on(async {
        let mut client = GatewayClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .map_err(|e| e.to_string())?;
        client
            .topology(TopologyRequest {})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// `waggle status` against the TLS gateway with `args`: success, or stderr.
fn cli_status(port: u16, dir: &Path, args: &[&str]) -> Result<(), String> {
    let address = format!("https://localhost:{port}");
    let mut all = vec!["status", "--address", &address];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = run_waggle(dir, &all, &[]);
    match ok && stdout.contains("clusterSize") {
        true => Ok(()),
        false => Err(stderr),
    }
}

/// Waits until `ok` holds, for at most [`MAX_WAIT`].
fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while start.elapsed() < MAX_WAIT {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} within {MAX_WAIT:?}");
}

fn start(files: &Files, client_ca: bool, rest_port: u16) -> Broker {
    let mut env = files.env(client_ca);
    env.push(("WAGGLE_REST_PORT", rest_port.to_string()));
    Broker::spawn_dev_in(tempfile::tempdir().unwrap(), &env)
}

#[test]
fn client_ports_speak_tls_only_and_take_a_new_certificate_without_a_restart() {
    let pki = tempfile::tempdir().unwrap();
    let files = Files::in_dir(pki.path());
    let (first, second) = (Ca::new("first"), Ca::new("second"));
    // Expiries the metric must show: 2030-01-01, then 2031-01-01.
    let (first_expiry, second_expiry) = (1_893_456_000, 1_924_992_000);
    files.write(&first.server_until(first_expiry));
    let rest = free_port();
    let broker = start(&files, false, rest);
    let management = broker.management_port;
    wait_for("the management port answers /startup over TLS", || {
        matches!(
            https_get(management, "/startup", &first, None),
            Some((200, _))
        )
    });

    let (code, body) = https_get(rest, "/v2/topology", &first, None).expect("REST over TLS");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("brokers"), "{body}");
    grpc_topology(broker.gateway_port, &first, None).expect("gRPC over TLS");
    std::fs::write(pki.path().join("first.pem"), &first.pem).unwrap();
    std::fs::write(pki.path().join("second.pem"), &second.pem).unwrap();
    cli_status(broker.gateway_port, pki.path(), &["--ca-file", "first.pem"])
        .expect("waggle status --ca-file");
    let err = cli_status(
        broker.gateway_port,
        pki.path(),
        &["--ca-file", "second.pem"],
    )
    .unwrap_err();
    assert!(err.contains("cannot connect to the gateway"), "{err}");
    // Plaintext gets nowhere, and a client of another CA refuses the server.
    assert_eq!(http_get(management, "/startup"), None);
    assert_eq!(http_get(rest, "/v2/topology"), None);
    assert!(grpc_plaintext_topology(broker.gateway_port).is_err());
    assert_eq!(https_get(management, "/startup", &second, None), None);
    assert!(grpc_topology(broker.gateway_port, &second, None).is_err());

    let expiry = |ca: &Ca| {
        let (_, metrics) = https_get(management, "/metrics", ca, None).expect("metrics");
        let line = "waggle_certificate_expiry_timestamp_seconds{certificate=\"client-ports\"} ";
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .map(|v| v.parse::<i64>().expect("a number"))
    };
    assert_eq!(expiry(&first), Some(first_expiry));

    // A new certificate, of the second CA: new connections get it.
    files.write(&second.server_until(second_expiry));
    wait_for("the new certificate is served", || {
        https_get(management, "/startup", &second, None).is_some()
    });
    assert_eq!(https_get(rest, "/v2/topology", &first, None), None);
    assert_eq!(
        https_get(rest, "/v2/topology", &second, None).map(|(code, _)| code),
        Some(200)
    );
    grpc_topology(broker.gateway_port, &second, None).expect("gRPC with the new certificate");
    assert_eq!(expiry(&second), Some(second_expiry));

    // A broken key leaves the certificate in use.
    std::fs::write(&files.key, "half written").unwrap();
    std::thread::sleep(2 * node::identity::tls::RELOAD_CHECK);
    assert_eq!(
        https_get(management, "/startup", &second, None).map(|(code, _)| code),
        Some(200)
    );
    let status = broker.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn with_a_client_ca_only_clients_with_its_certificates_get_in() {
    let pki = tempfile::tempdir().unwrap();
    let files = Files::in_dir(pki.path());
    let (ca, foreign) = (Ca::new("clients"), Ca::new("foreign"));
    files.write(&ca.server());
    std::fs::write(&files.client_ca, &ca.pem).unwrap();
    let (client, stranger) = (ca.client(), foreign.client());
    let rest = free_port();
    let broker = start(&files, true, rest);
    let management = broker.management_port;
    wait_for("the management port answers /startup to a client", || {
        matches!(
            https_get(management, "/startup", &ca, Some(&client)),
            Some((200, _))
        )
    });
    assert_eq!(
        https_get(rest, "/v2/topology", &ca, Some(&client)).map(|(code, _)| code),
        Some(200)
    );
    grpc_topology(broker.gateway_port, &ca, Some(&client)).expect("gRPC with a client certificate");
    let dir = pki.path();
    std::fs::write(dir.join("client.pem"), &client.cert).unwrap();
    std::fs::write(dir.join("client-key.pem"), &client.key).unwrap();
    let with_ca = ["--ca-file", files.client_ca.to_str().unwrap()];
    cli_status(
        broker.gateway_port,
        dir,
        &[
            &with_ca[..],
            &["--cert-file", "client.pem", "--key-file", "client-key.pem"],
        ]
        .concat(),
    )
    .expect("waggle status with a client certificate");
    assert!(cli_status(broker.gateway_port, dir, &with_ca).is_err());

    assert_eq!(https_get(rest, "/v2/topology", &ca, None), None);
    assert_eq!(https_get(rest, "/v2/topology", &ca, Some(&stranger)), None);
    assert_eq!(https_get(management, "/startup", &ca, None), None);
    assert!(grpc_topology(broker.gateway_port, &ca, None).is_err());
    assert!(grpc_topology(broker.gateway_port, &ca, Some(&stranger)).is_err());
    let status = broker.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_tls_file_that_does_not_load_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let server = Ca::new("ca").server();
    std::fs::write(&files.cert, &server.cert).unwrap();
    let env = files.env(false);
    let ports = [
        ("WAGGLE_NETWORK_HOST", "127.0.0.1".to_string()),
        ("WAGGLE_NETWORK_GATEWAY_PORT", free_port().to_string()),
        ("WAGGLE_NETWORK_MANAGEMENT_PORT", free_port().to_string()),
        ("WAGGLE_NETWORK_INTERNAL_PORT", free_port().to_string()),
        ("WAGGLE_REST_PORT", free_port().to_string()),
    ];
    let env: Vec<_> = env.into_iter().chain(ports).collect();
    let (ok, _, stderr) = run_waggle(dir.path(), &["dev"], &env);
    assert!(!ok);
    assert!(
        stderr.contains("gateway.tls_key_file") && stderr.contains("server-key.pem"),
        "{stderr}"
    );
    // With the key of another certificate.
    std::fs::write(&files.key, Ca::new("other").server().key).unwrap();
    let (ok, _, stderr) = run_waggle(dir.path(), &["dev"], &env);
    assert!(!ok);
    assert!(stderr.contains("gateway.tls_key_file"), "{stderr}");
}
