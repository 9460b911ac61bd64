//! The test harness: a real registry daemon started in-process on 127.0.0.1:0 with a temporary
//! data directory, plus builders for publish documents and an isolated real `npm`.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod fake_http;
pub mod services;
pub mod static_upstream;
pub mod web_form;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::thread::JoinHandle;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use registry_core::accounts::tokens::{create_token, TokenOptions};
use registry_core::accounts::users::{create_user, NewUser};
use registry_core::config::{Config, Registration};
use registry_core::Registry;
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha512};

/// Whether this test binary runs its registries on PostgreSQL: a suite compiled a second time
/// as `<suite>_on_postgres` (see `tests/protocol_on_postgres.rs`) does, with a schema of its
/// own per data directory; every other binary uses SQLite, the default.
pub fn on_postgres() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .is_some_and(|name| name.contains("_on_postgres"))
}

/// Points `config` at this binary's backend: on PostgreSQL, a schema of its data directory's
/// own (unless it names a database itself).
pub fn use_test_backend(config: &mut Config) {
    if on_postgres() && config.database_url.is_none() {
        config.database_url = Some(services::postgres_schema_url(&config.data_dir));
    }
}

pub struct TestRegistry {
    /// `http://127.0.0.1:PORT` (no trailing slash); `https://` when TLS is configured
    pub base: String,
    /// `http://127.0.0.1:PORT` of the `metrics_listen` address, when the configuration has one
    /// (bound as configured: `127.0.0.1:0` picks a free port).
    pub metrics_base: Option<String>,
    pub registry: Arc<Registry>,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(|_| {})
    }

    /// Starts a daemon after `configure` has adjusted the default configuration.
    pub fn start_with(configure: impl FnOnce(&mut Config)) -> TestRegistry {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: data_dir.path().join("data"),
            registration: Registration::Closed,
            ..Config::default()
        };
        configure(&mut config);
        use_test_backend(&mut config);
        let registry = Arc::new(Registry::open(config).expect("open registry"));
        // The daemon's own listening socket (its listen queue included).
        let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = registry_daemon::bind(any_port).expect("bind 127.0.0.1:0");
        let scheme = if registry.config.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}", listener.local_addr().expect("local addr"));
        let metrics_listener = registry
            .config
            .metrics_listen
            .map(|addr| registry_daemon::bind(addr).expect("bind the metrics address"));
        let metrics_base = metrics_listener.as_ref().map(|listener| {
            format!(
                "http://{}",
                listener.local_addr().expect("metrics local addr")
            )
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = registry.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let metrics = metrics_listener
                    .map(|l| tokio::net::TcpListener::from_std(l).expect("metrics listener"));
                registry_daemon::serve_with_metrics(served, listener, metrics, async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
            });
        });
        TestRegistry {
            base,
            metrics_base,
            registry,
            data_dir,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Starts a daemon on an existing data directory (to check what survives a restart).
    pub fn start_on(data_dir: &Path) -> TestRegistry {
        let data_dir = data_dir.to_path_buf();
        TestRegistry::start_with(move |config| config.data_dir = data_dir)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates a user directly in the database (as `registry user add` does).
    pub fn add_user(&self, name: &str, password: &str) {
        self.add_user_with(name, password, false);
    }

    pub fn add_user_with(&self, name: &str, password: &str, admin: bool) {
        create_user(
            &self.registry.store,
            &NewUser {
                name,
                email: &format!("{name}@example.com"),
                password,
                admin,
            },
        )
        .expect("create user");
    }

    /// A fresh token for an existing user (as `registry token create` does).
    pub fn token(&self, user: &str, options: TokenOptions) -> String {
        let record = self
            .registry
            .store
            .read(|db| db.user_by_name(user))
            .expect("read user")
            .expect("user exists");
        create_token(&self.registry.store, record.id, &options)
            .expect("create token")
            .secret
    }

    /// A user with a read-write token, in one call.
    pub fn user_with_token(&self, name: &str) -> String {
        self.add_user(name, &format!("{name}-password"));
        self.token(name, TokenOptions::default())
    }

    /// Stops the daemon gracefully and waits for it.
    pub fn stop(mut self) {
        self.shutdown_and_join();
    }

    fn shutdown_and_join(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.shutdown_and_join();
    }
}

/// A plain HTTP client that shows the bytes as they came: no automatic decompression (the
/// core's upstream client turns reqwest's gzip on for the whole build).
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .no_gzip()
        .build()
        .expect("http client")
}

/// A gzip'd tar with `package/`-relative files, as `npm pack` makes them.
pub fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        let name = path.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        builder.append(&header, *content).expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// The tarball of a minimal package `name@version`.
pub fn package_tarball(name: &str, version: &str) -> Vec<u8> {
    let manifest = json!({ "name": name, "version": version, "main": "index.js" }).to_string();
    let index = format!("module.exports = {:?};\n", format!("{name}@{version}"));
    tarball(&[
        ("package/package.json", manifest.as_bytes()),
        ("package/index.js", index.as_bytes()),
    ])
}

pub fn integrity(bytes: &[u8]) -> String {
    format!("sha512-{}", B64.encode(Sha512::digest(bytes)))
}

pub fn shasum(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

/// A publish document as libnpmpublish sends it, for `tgz` as the tarball.
pub fn publish_body(name: &str, version: &str, tgz: &[u8]) -> Value {
    let bare = name.rsplit('/').next().unwrap_or(name);
    json!({
        "_id": name,
        "name": name,
        "description": format!("the {name} package"),
        "dist-tags": { "latest": version },
        "versions": {
            version: {
                "name": name,
                "version": version,
                "description": format!("the {name} package"),
                "main": "index.js",
                "readme": format!("# {name}\n"),
                "readmeFilename": "README.md",
                "_id": format!("{name}@{version}"),
                "dist": {
                    "integrity": integrity(tgz),
                    "shasum": shasum(tgz),
                    "tarball": format!("http://wrong.example/{name}/-/{bare}-{version}.tgz"),
                }
            }
        },
        "access": null,
        "_attachments": {
            format!("{name}-{version}.tgz"): {
                "content_type": "application/octet-stream",
                "data": B64.encode(tgz),
                "length": tgz.len(),
            }
        }
    })
}

/// `@scope/name` → `@scope%2fname`, as npm writes package paths.
pub fn escaped(name: &str) -> String {
    name.replacen('/', "%2f", 1)
}

/// Publishes `name@version` with a bearer token; returns the response status.
pub fn publish(reg: &TestRegistry, token: &str, name: &str, version: &str) -> u16 {
    let tgz = package_tarball(name, version);
    client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&publish_body(name, version, &tgz))
        .send()
        .expect("publish request")
        .status()
        .as_u16()
}

/// The real `npm`, isolated from the machine's configuration: its own HOME, user config and
/// cache under a temp dir, pointed at the test registry.
pub struct Npm {
    pub home: tempfile::TempDir,
    registry: String,
}

impl Npm {
    pub fn new(reg: &TestRegistry) -> Npm {
        let home = tempfile::tempdir().expect("npm home");
        let registry = format!("{}/", reg.base);
        std::fs::write(home.path().join(".npmrc"), format!("registry={registry}\n"))
            .expect("write .npmrc");
        Npm { home, registry }
    }

    /// Saves a token for the registry in this npm's user config.
    pub fn with_token(self, token: &str) -> Npm {
        // npm keys credentials by the URL without its scheme (`//host:port/`).
        let nerf = self
            .registry
            .split_once(':')
            .map_or(self.registry.as_str(), |(_, rest)| rest);
        let rc = format!("registry={}\n{nerf}:_authToken={token}\n", self.registry);
        std::fs::write(self.userconfig(), rc).expect("write .npmrc");
        self
    }

    pub fn userconfig(&self) -> PathBuf {
        self.home.path().join(".npmrc")
    }

    /// A new empty directory under this npm's home, for projects and package sources.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.home.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    /// `program` (npm itself, or a driver that runs it) with this npm's isolated environment.
    fn isolated(&self, program: &str, cwd: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("npm_config_userconfig", self.userconfig())
            .env(
                "npm_config_globalconfig",
                self.home.path().join("global-npmrc"),
            )
            .env("npm_config_cache", self.home.path().join("cache"))
            .env("npm_config_registry", &self.registry)
            .env("npm_config_update_notifier", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_color", "false")
            .env("npm_config_progress", "false")
            .env("npm_config_fetch_retries", "0");
        command
    }

    /// Runs `npm ARGS` in `cwd`.
    pub fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        self.isolated("npm", cwd)
            .args(args)
            .output()
            .expect("npm is installed and runs")
    }

    /// Starts `npm ARGS` in `cwd` without waiting: stdout piped (to read what it prints, such as
    /// the web login's URL), stdin closed, so npm sees no terminal.
    pub fn spawn(&self, cwd: &Path, args: &[&str]) -> std::process::Child {
        self.isolated("npm", cwd)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("npm is installed and runs")
    }

    /// Runs npm and fails the test, showing its output, if it does not succeed.
    pub fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let output = self.run(cwd, args);
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "npm {args:?} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

/// Writes a small package (`package.json`, `index.js`, `README.md`) into `dir`.
pub fn write_package(dir: &Path, name: &str, version: &str, extra: Value) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut manifest = json!({
        "name": name, "version": version, "main": "index.js", "license": "MIT",
        "description": format!("{name} for tests"),
    });
    if let (Some(m), Some(e)) = (manifest.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    std::fs::write(dir.join("package.json"), manifest.to_string()).expect("package.json");
    std::fs::write(
        dir.join("index.js"),
        format!("module.exports = {:?};\n", format!("{name}@{version}")),
    )
    .expect("index.js");
    std::fs::write(
        dir.join("README.md"),
        format!("# {name}\n\nversion {version}\n"),
    )
    .expect("readme");
    dir.to_path_buf()
}

/// Drives a command on a pseudo-terminal (npm only prompts when stdin and stdout are TTYs) and
/// types answers to its prompts. Arguments: ANSWERS_JSON CMD [ARGS...], where ANSWERS_JSON is
/// `[[regex, answer], …]`; each answer is typed once, when its prompt appears, in whatever
/// order the prompts come. Prints the transcript; exits with the command's status (124 after
/// 60 s without finishing).
const PTY_DRIVER: &str = r#"
import json, os, pty, re, select, signal, sys, time
answers = [(re.compile(p), a) for p, a in json.loads(sys.argv[1])]
cmd = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.environ['TERM'] = 'dumb'
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
buf, pos, deadline = '', 0, time.time() + 60
while True:
    left = deadline - time.time()
    if left <= 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.stdout.write(buf + '\n[pty: timed out]\n')
        sys.exit(124)
    ready, _, _ = select.select([fd], [], [], min(left, 0.5))
    if fd not in ready:
        continue
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    buf += data.decode('utf-8', 'replace')
    while True:
        hits = [(m.start(), m.end(), i) for i, (pat, _) in enumerate(answers)
                for m in [pat.search(buf, pos)] if m]
        if not hits:
            break
        _, pos, i = min(hits)
        answer = answers.pop(i)[1]
        time.sleep(0.1)
        os.write(fd, (answer + '\r').encode())
sys.stdout.write(buf)
_, status = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"#;

impl Npm {
    /// Runs `npm ARGS` in `cwd` on a pseudo-terminal, with the isolation of [`Npm::run`],
    /// answering prompts: `answers` pairs a regex for the prompt with the text to type.
    /// Returns the exit status and the terminal transcript.
    pub fn on_tty(
        &self,
        cwd: &Path,
        args: &[&str],
        answers: &[(&str, &str)],
    ) -> (Option<i32>, String) {
        let answers = serde_json::to_string(answers).expect("answers as JSON");
        let output = self
            .isolated("python3", cwd)
            .arg("-c")
            .arg(PTY_DRIVER)
            .arg(answers)
            .arg("npm")
            .args(args)
            .output()
            .expect("python3 runs");
        let transcript = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), transcript)
    }
}

/// Configures `config` to proxy `base` (one upstream named `upstream`, every name), with
/// `adjust` applied to it (max_age, timeouts, …).
pub fn proxy_to(
    config: &mut Config,
    base: &str,
    adjust: impl FnOnce(&mut registry_core::upstream::config::UpstreamConfig),
) {
    let mut upstream =
        registry_core::upstream::config::UpstreamConfig::shortcut(base).expect("upstream URL");
    adjust(&mut upstream);
    config.upstreams = vec![upstream];
}
