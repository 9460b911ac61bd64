//! `registry serve --tls-cert/--tls-key`: bad TLS settings stop the daemon before it listens,
//! with one line and the exit code of a configuration error; `config show` names the files.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{registry, run_in, Run};

/// Runs `registry serve` with `args`, expecting it to exit by itself (it is killed, and the
/// test fails, if it is still running after 30 s: then it started serving).
fn serve_exits(data_dir: &str, args: &[&str]) -> Run {
    let mut child = registry()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn registry serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll the child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("wait");
            panic!(
                "registry serve {args:?} kept running:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("wait");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

#[test]
fn serve_with_a_certificate_but_no_key_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let cert = dir.path().join("cert.pem");
    let run = serve_exits(
        &data.display().to_string(),
        &["--tls-cert", &cert.display().to_string()],
    )
    .fails(2);
    assert!(
        run.stderr
            .contains("tls_cert is set (flag) but tls_key is not"),
        "{}",
        run.stderr
    );
}

#[test]
fn serve_with_unreadable_tls_files_exits_2_before_listening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let cert = dir.path().join("missing-cert.pem");
    let key = dir.path().join("missing-key.pem");
    let run = serve_exits(
        &data.display().to_string(),
        &[
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ],
    )
    .fails(2);
    assert!(
        run.stderr
            .contains(&format!("cannot read tls_cert {}", cert.display())),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("listening"), "{}", run.stderr);
}

#[test]
fn config_show_names_the_tls_files_and_where_they_came_from() {
    let run = run_in(&["config", "show", "--json"], "");
    let shown = run.ok().json();
    assert_eq!(shown["tls_cert"]["value"], serde_json::Value::Null);
    assert_eq!(shown["tls_cert"]["source"], "default");

    let output = registry()
        .args(["config", "show", "--json"])
        .env("REGISTRY_TLS_CERT", "/etc/registry/cert.pem")
        .env("REGISTRY_TLS_KEY", "/etc/registry/key.pem")
        .output()
        .expect("run registry config show");
    assert!(output.status.success(), "{output:?}");
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(shown["tls_cert"]["value"], "/etc/registry/cert.pem");
    assert_eq!(shown["tls_cert"]["source"], "env REGISTRY_TLS_CERT");
    assert_eq!(shown["tls_key"]["value"], "/etc/registry/key.pem");
    assert_eq!(shown["tls_key"]["source"], "env REGISTRY_TLS_KEY");
}
