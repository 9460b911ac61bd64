//! `registry serve` terminating TLS itself: a self-signed certificate made at test time, HTTPS
//! with reqwest and with the real npm, plain HTTP refused without harm to other connections,
//! and the configuration errors (half a pair, unreadable or invalid files).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{escaped, package_tarball, publish_body, write_package, Npm, TestRegistry};
use registry_core::config::{Config, Overrides};
use registry_core::Registry;
use serde_json::Value;

/// A self-signed certificate for the loopback address, written as PEM files.
struct Cert {
    dir: tempfile::TempDir,
    pem: String,
}

impl Cert {
    fn new() -> Cert {
        let made = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .expect("self-signed certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let pem = made.cert.pem();
        std::fs::write(dir.path().join("cert.pem"), &pem).expect("write cert.pem");
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem())
            .expect("write key.pem");
        Cert { dir, pem }
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// A daemon serving HTTPS with this certificate.
    fn serve(&self) -> TestRegistry {
        let (cert, key) = (self.cert_path(), self.key_path());
        TestRegistry::start_with(move |config| {
            config.tls_cert = Some(cert);
            config.tls_key = Some(key);
        })
    }

    /// A client that trusts this certificate and nothing else.
    fn client(&self) -> reqwest::blocking::Client {
        let cert = reqwest::Certificate::from_pem(self.pem.as_bytes()).expect("certificate");
        reqwest::blocking::Client::builder()
            .tls_certs_only([cert])
            .timeout(Duration::from_secs(60))
            .build()
            .expect("https client")
    }
}

fn ping_over_https(reg: &TestRegistry, client: &reqwest::blocking::Client) {
    let response = client
        .get(reg.url("/-/ping"))
        .send()
        .expect("HTTPS ping is answered");
    assert_eq!(response.status(), 200);
}

#[test]
fn https_serves_ping_and_packuments_whose_tarball_urls_are_https() {
    let cert = Cert::new();
    let reg = cert.serve();
    assert!(reg.base.starts_with("https://127.0.0.1:"), "{}", reg.base);
    let client = cert.client();
    ping_over_https(&reg, &client);

    let token = reg.user_with_token("alice");
    let tgz = package_tarball("over-tls", "1.0.0");
    let published = client
        .put(reg.url("/over-tls"))
        .bearer_auth(&token)
        .json(&publish_body("over-tls", "1.0.0", &tgz))
        .send()
        .expect("publish over HTTPS");
    assert_eq!(published.status(), 201);

    let packument: Value = client
        .get(reg.url(&format!("/{}", escaped("over-tls"))))
        .send()
        .expect("packument over HTTPS")
        .json()
        .expect("packument is JSON");
    let tarball = packument["versions"]["1.0.0"]["dist"]["tarball"]
        .as_str()
        .expect("dist.tarball")
        .to_string();
    assert_eq!(tarball, reg.url("/over-tls/-/over-tls-1.0.0.tgz"));
    assert!(tarball.starts_with("https://"), "{tarball}");

    // The tarball is streamed from its file: the same bytes must come through TLS.
    let downloaded = client
        .get(&tarball)
        .send()
        .expect("tarball over HTTPS")
        .bytes()
        .expect("tarball body");
    assert_eq!(downloaded.as_ref(), tgz.as_slice());
}

#[test]
fn npm_publishes_and_installs_over_https_with_the_certificate_as_cafile() {
    let cert = Cert::new();
    let reg = cert.serve();
    let token = reg.user_with_token("alice");
    let npm = Npm::new(&reg).with_token(&token);
    let mut rc = std::fs::read_to_string(npm.userconfig()).expect("read .npmrc");
    rc.push_str(&format!("cafile={}\n", cert.cert_path().display()));
    std::fs::write(npm.userconfig(), rc).expect("write .npmrc");

    let src = write_package(
        &npm.dir("src/tls-e2e"),
        "tls-e2e",
        "1.0.0",
        serde_json::json!({}),
    );
    npm.ok(&src, &["publish"]);

    let project = npm.dir("projects/consumer");
    std::fs::write(
        project.join("package.json"),
        r#"{"name":"consumer","version":"0.0.0","private":true}"#,
    )
    .expect("project package.json");
    npm.ok(&project, &["install", "tls-e2e", "--prefer-online"]);
    let installed = std::fs::read_to_string(project.join("node_modules/tls-e2e/index.js"))
        .expect("installed index.js");
    assert!(installed.contains("tls-e2e@1.0.0"), "{installed}");
    let lock = std::fs::read_to_string(project.join("package-lock.json")).expect("lock file");
    let lock: Value = serde_json::from_str(&lock).expect("lock file is JSON");
    assert_eq!(
        lock["packages"]["node_modules/tls-e2e"]["resolved"],
        reg.url("/tls-e2e/-/tls-e2e-1.0.0.tgz")
    );
}

#[test]
fn npm_refuses_the_registry_when_it_does_not_trust_the_certificate() {
    // The other side of the cafile test: it is the certificate that made npm succeed.
    let cert = Cert::new();
    let reg = cert.serve();
    let npm = Npm::new(&reg);
    let output = npm.run(npm.home.path(), &["ping"]);
    assert!(
        !output.status.success(),
        "npm ping succeeded against an untrusted self-signed certificate"
    );
}

#[test]
fn plain_http_to_the_tls_port_is_closed_and_https_keeps_working() {
    let cert = Cert::new();
    let reg = cert.serve();
    let client = cert.client();
    let address = reg.base.trim_start_matches("https://").to_string();

    // A client that connects and never speaks holds only its own connection.
    let silent = TcpStream::connect(&address).expect("connect");
    ping_over_https(&reg, &client);

    let mut plain = TcpStream::connect(&address).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    plain
        .write_all(b"GET /-/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("send a plain HTTP request");
    let mut answer = Vec::new();
    // The server closes the connection (perhaps after a TLS alert, perhaps with a reset):
    // either way the read ends well before the timeout, and never with an HTTP answer.
    let ended = plain.read_to_end(&mut answer);
    if let Err(err) = &ended {
        assert!(
            !matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the server kept the plain-HTTP connection open: {err}"
        );
    }
    assert!(
        !answer.starts_with(b"HTTP/"),
        "a plain HTTP request got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );

    let via_reqwest = reqwest::blocking::Client::new()
        .get(format!("http://{address}/-/ping"))
        .send();
    assert!(
        via_reqwest.is_err(),
        "plain HTTP got a response: {via_reqwest:?}"
    );

    ping_over_https(&reg, &client);
    drop(silent);
    ping_over_https(&reg, &client);
}

fn env(pairs: &[(&str, &Path)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.display().to_string()))
        .collect()
}

fn load_error(pairs: &[(&str, &Path)]) -> String {
    match Config::load(None, env(pairs), &Overrides::default()) {
        Ok(_) => panic!("{pairs:?} was accepted"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn a_certificate_without_a_key_or_a_key_without_a_certificate_is_a_config_error() {
    let cert = Cert::new();
    let err = load_error(&[("REGISTRY_TLS_CERT", &cert.cert_path())]);
    assert!(
        err.contains("tls_cert is set (env REGISTRY_TLS_CERT) but tls_key is not"),
        "{err}"
    );
    let err = load_error(&[("REGISTRY_TLS_KEY", &cert.key_path())]);
    assert!(
        err.contains("tls_key is set (env REGISTRY_TLS_KEY) but tls_cert is not"),
        "{err}"
    );
    let flags = Overrides {
        tls_cert: Some(cert.cert_path()),
        ..Overrides::default()
    };
    let (config, _) = Config::load(None, env(&[("REGISTRY_TLS_KEY", &cert.key_path())]), &flags)
        .expect("a pair made of a flag and a variable");
    assert_eq!(config.sources["tls_cert"], "flag");
    assert_eq!(config.sources["tls_key"], "env REGISTRY_TLS_KEY");
}

/// Runs `serve` with `configure`d TLS files and returns its error, which must come at once.
fn serve_error(configure: impl FnOnce(&mut Config)) -> registry_core::Error {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        data_dir: data.path().join("data"),
        ..Config::default()
    };
    configure(&mut config);
    let registry = Arc::new(Registry::open(config).expect("open registry"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let served = tokio::time::timeout(
            Duration::from_secs(30),
            registry_daemon::serve(registry, listener, std::future::pending()),
        )
        .await
        .expect("serve gives up at once on bad TLS files");
        match served {
            Ok(()) => panic!("serve started with bad TLS files"),
            Err(err) => err,
        }
    })
}

#[test]
fn unreadable_or_invalid_tls_files_stop_serve_with_a_clear_config_error() {
    let cert = Cert::new();
    let missing = cert.dir.path().join("missing.pem");
    let garbage = cert.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write garbage");
    let other_key = cert.dir.path().join("other-key.pem");
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    std::fs::write(&other_key, other.signing_key.serialize_pem()).expect("write other key");

    let cases: [(PathBuf, PathBuf, &str); 5] = [
        (
            missing.clone(),
            cert.key_path(),
            "cannot read tls_cert {missing}",
        ),
        (
            cert.cert_path(),
            missing.clone(),
            "cannot read tls_key {missing}",
        ),
        (
            garbage.clone(),
            cert.key_path(),
            "tls_cert {garbage} holds no PEM CERTIFICATE",
        ),
        (
            cert.cert_path(),
            garbage.clone(),
            "tls_key {garbage} holds no PEM PRIVATE KEY",
        ),
        (
            cert.cert_path(),
            other_key.clone(),
            "cannot be used together",
        ),
    ];
    for (cert_path, key_path, expected) in cases {
        let expected = expected
            .replace("{missing}", &missing.display().to_string())
            .replace("{garbage}", &garbage.display().to_string());
        let err = serve_error(|config| {
            config.tls_cert = Some(cert_path.clone());
            config.tls_key = Some(key_path.clone());
        });
        assert!(
            matches!(err, registry_core::Error::BadRequest(_)),
            "not a config error: {err:?}"
        );
        assert!(err.to_string().contains(&expected), "{expected:?} in {err}");
    }
}
