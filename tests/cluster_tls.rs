//! TLS to Redis (`rediss://`) against a real `redis-server` started with TLS only, its
//! certificates issued here by a throwaway CA (rcgen). Two gateway nodes that trust the CA
//! share a notification across the TLS connections; a node without the CA, or with
//! another CA, refuses to start with a clear error; mutual TLS needs the client
//! certificate. Needs `redis-server` built with TLS (Debian's is) on PATH.

#[allow(dead_code)]
#[path = "gateway/helpers.rs"]
mod helpers;

#[allow(dead_code)]
mod cluster_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lms_realtime::auth::Role;
use lms_realtime::config::Secret;
use lms_realtime::{Application, Config};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use cluster_support::{free_port, tenant};
use helpers::*;

/// A CA and the files a test hands out: its certificate, and leaf certificates it signs.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    name: &'static str,
}

impl TestCa {
    fn new(dir: &Path, name: &'static str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca = Self {
            issuer,
            dir: dir.to_owned(),
            name,
        };
        std::fs::write(ca.cert_file(), ca.issuer.pem()).unwrap();
        ca
    }

    fn cert_file(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A leaf certificate for 127.0.0.1 with `usage`; returns (cert file, key file).
    fn issue(&self, leaf: &str, usage: ExtendedKeyUsagePurpose) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, leaf);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_file, key_file) = (
            self.dir.join(format!("{leaf}.pem")),
            self.dir.join(format!("{leaf}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }
}

/// A `redis-server` that listens with TLS only (no plain port), killed on drop.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(ca: &TestCa, require_client_cert: bool) -> Self {
        let (cert, key) = ca.issue("redis-server", ExtendedKeyUsagePurpose::ServerAuth);
        let port = free_port(false);
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &ca.dir.display().to_string()])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(ca.cert_file())
            .args([
                "--tls-auth-clients",
                if require_client_cert { "yes" } else { "no" },
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not listen on its TLS port (built without TLS?)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cluster_config(url: &str, node: &str, tweak: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::for_tests(SECRET);
    config.redis_url = Some(Secret(url.to_owned()));
    config.node_id = Some(format!("{node}-{}", fastrand::u32(..)));
    tweak(&mut config);
    config
}

/// Builds a node that must not start; returns its error, all causes included.
async fn refused(config: Config) -> String {
    let built = tokio::time::timeout(Duration::from_secs(20), Application::build(config))
        .await
        .expect("a node that cannot connect gives up instead of hanging");
    match built {
        Ok(_) => panic!("the node started without trusting Redis's certificate"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn nodes_trusting_the_ca_share_a_notification_over_tls_and_others_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "trusted");
    let redis = TlsRedis::start(&ca, false);
    let url = redis.url();
    let with_ca = |c: &mut Config| c.redis_tls_ca_file = Some(ca.cert_file());

    let a = spawn_node_with(|c| *c = cluster_config(&url, "tls-a", with_ca)).await;
    let b = spawn_node_with(|c| *c = cluster_config(&url, "tls-b", with_ca)).await;
    for node in [&a, &b] {
        let ready = node
            .http
            .get(format!("{}/readyz", node.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    }

    let t = tenant();
    let student = connect(&b, &token("u1", Some(&t), Role::Student)).await;
    let (status, body) = a.notify(&t, "u1", "over-tls").await;
    assert!(status < 300, "{status} {body}");
    let got = student.inbox.next("notification:new").await;
    assert_eq!(got["id"], "over-tls", "{got}");
    let (status, unread) = b
        .get(&format!("/tenants/{t}/users/u1/unread"), &service_token(&t))
        .await;
    assert_eq!(status, 200, "{unread}");

    // The system roots do not know the throwaway CA.
    let e = refused(cluster_config(&url, "no-ca", |_| {})).await;
    assert!(
        e.contains("cannot connect to Redis at rediss://127.0.0.1"),
        "{e}"
    );
    // Nor does another CA.
    let other = TestCa::new(dir.path(), "other");
    let e = refused(cluster_config(&url, "wrong-ca", |c| {
        c.redis_tls_ca_file = Some(other.cert_file());
    }))
    .await;
    assert!(
        e.contains("cannot connect to Redis at rediss://127.0.0.1"),
        "{e}"
    );
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    student.disconnect().await;
    for node in [a, b] {
        node.shutdown.trigger();
        let _ = node.task.await;
    }
}

#[tokio::test]
async fn a_server_that_requires_client_certificates_takes_the_nodes_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "mtls");
    let redis = TlsRedis::start(&ca, true);
    let url = redis.url();
    let (cert, key) = ca.issue("gateway-client", ExtendedKeyUsagePurpose::ClientAuth);

    let node = spawn_node_with(|c| {
        *c = cluster_config(&url, "mtls", |c| {
            c.redis_tls_ca_file = Some(ca.cert_file());
            c.redis_tls_client_cert_file = Some(cert.clone());
            c.redis_tls_client_key_file = Some(key.clone());
        });
    })
    .await;
    let t = tenant();
    let student = connect(&node, &token("u1", Some(&t), Role::Student)).await;
    let (status, body) = node.notify(&t, "u1", "mutual").await;
    assert!(status < 300, "{status} {body}");
    assert_eq!(student.inbox.next("notification:new").await["id"], "mutual");

    // The same CA without a client certificate: the server hangs up on the handshake.
    let e = refused(cluster_config(&url, "no-client-cert", |c| {
        c.redis_tls_ca_file = Some(ca.cert_file());
    }))
    .await;
    assert!(
        e.contains("cannot connect to Redis at rediss://127.0.0.1"),
        "{e}"
    );

    student.disconnect().await;
    node.shutdown.trigger();
    let _ = node.task.await;
}
