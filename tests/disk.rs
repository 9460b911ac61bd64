//! Storage failures: a full disk, a read-only data directory and a tarball whose blob is gone.
//! Each answers a clear `{error, reason}` (507, 503, 500), stores nothing half-written, keeps
//! serving what was stored before, and — for the first two — works again as soon as the disk
//! has room or is writable again. `registry doctor`'s check (`admin::doctor`) is the judge of
//! "nothing half-written" and reports the missing blob.
//!
//! The data directory lives on a small tmpfs mounted for the test, because root ignores file
//! permissions: only a real file system can say ENOSPC or EROFS to root. Mounting needs root
//! (or CAP_SYS_ADMIN), which the test machines and CI have; without it these tests fail and
//! say so rather than skip.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// Room for the database (a few hundred KiB with its WAL) and a handful of tiny tarballs.
const TMPFS_SIZE: &str = "4m";

/// Runs a mount-related command; `Err` carries what it printed.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A tmpfs of [`TMPFS_SIZE`] mounted on a temporary directory; unmounted on drop (lazily if
/// something still holds it), so no mount outlives the test, even one that failed.
struct Tmpfs {
    root: PathBuf,
    /// Mounts stacked on top, unmounted first.
    stacked: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount() -> Tmpfs {
        for tool in ["mount", "umount"] {
            if let Err(e) = run(tool, &["--version"]) {
                panic!("this test needs `{tool}` (util-linux): {e}");
            }
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("mnt");
        std::fs::create_dir(&root).expect("mkdir mount point");
        let root_str = root.to_str().expect("utf-8 path");
        let size = format!("size={TMPFS_SIZE},mode=0755");
        if let Err(e) = run("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", root_str]) {
            panic!(
                "this test mounts a small tmpfs as the registry's data directory and needs \
                 root (or CAP_SYS_ADMIN) to do so: {e}"
            );
        }
        Tmpfs {
            root,
            stacked: Vec::new(),
            _dir: dir,
        }
    }

    /// Stacks a bind mount of `dir` on itself (to make it read-only and writable again).
    fn bind_on_itself(&mut self, dir: &Path) {
        let dir_str = dir.to_str().expect("utf-8 path");
        run("mount", &["--bind", dir_str, dir_str]).expect("bind mount");
        self.stacked.push(dir.to_path_buf());
    }

    fn remount_bind(dir: &Path, mode: &str) {
        let options = format!("remount,bind,{mode}");
        run(
            "mount",
            &["-o", &options, dir.to_str().expect("utf-8 path")],
        )
        .unwrap_or_else(|e| panic!("remount {mode}: {e}"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut mounts = std::mem::take(&mut self.stacked);
        mounts.reverse();
        mounts.push(self.root.clone());
        for mount in mounts {
            let path = mount.to_string_lossy().into_owned();
            if let Err(e) = run("umount", &[&path]) {
                eprintln!("{e}; detaching it lazily");
                if let Err(e) = run("umount", &["-l", &path]) {
                    eprintln!("LEFT MOUNTED: {e}");
                }
            }
        }
    }
}

/// Writes a file until the file system says it is full; answers its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("create filler");
    let chunk = vec![0xA5u8; 64 * 1024];
    // 4 MiB fills in 64 writes; the bound only stops a runaway loop.
    for _ in 0..10_000 {
        if let Err(e) = file.write_all(&chunk) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::StorageFull,
                "filling the disk: {e}"
            );
            // The last partial chunk may have left part of a page: take that too.
            for _ in 0..4096 {
                if file.write_all(&[0xA5]).is_err() {
                    return path;
                }
            }
            return path;
        }
    }
    panic!("{} never filled up", dir.display());
}

/// Publishes `name@version`; answers the status and the JSON body.
fn publish_answer(reg: &TestRegistry, token: &str, name: &str, version: &str) -> (u16, Value) {
    let tgz = package_tarball(name, version);
    let response = client()
        .put(reg.url(&format!("/{}", escaped(name))))
        .bearer_auth(token)
        .json(&publish_body(name, version, &tgz))
        .send()
        .expect("publish request");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("publish {name}@{version} → {status}, not JSON ({e}): {text}"));
    (status, body)
}

/// The two publishes every test tries: a new version of the package stored before the disk
/// failed, and a new package.
const TRIED: [(&str, &str); 2] = [("before", "1.1.0"), ("after", "1.0.0")];

#[track_caller]
fn publishes_refused(reg: &TestRegistry, token: &str, status: u16, says: &str) {
    for (name, version) in TRIED {
        let (answered, body) = publish_answer(reg, token, name, version);
        assert_eq!(answered, status, "publish {name}@{version}: {body}");
        assert_error_body(&body, says);
    }
}

/// Recovery: the refused publishes now go through, and nothing stored before changed.
#[track_caller]
fn publishes_go_through(reg: &TestRegistry, token: &str) {
    for (name, version) in TRIED {
        let (status, body) = publish_answer(reg, token, name, version);
        assert_eq!(
            status, 201,
            "publish {name}@{version} after recovery: {body}"
        );
    }
    assert_intact(reg, "before", &["1.0.0", "1.1.0"]);
    assert_intact(reg, "after", &["1.0.0"]);
    assert_healthy(reg);
}

/// A write that touches only the database: `stable` on before@1.0.0.
fn tag_stable(reg: &TestRegistry, token: &str) -> reqwest::blocking::Response {
    client()
        .put(reg.url("/-/package/before/dist-tags/stable"))
        .bearer_auth(token)
        .json(&"1.0.0")
        .send()
        .expect("dist-tag")
}

/// Asserts an `{error, reason}` body that says `says`.
#[track_caller]
fn assert_error_body(body: &Value, says: &str) {
    let error = body["error"].as_str().unwrap_or_default();
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(error.contains(says), "error should say {says:?}: {body}");
    assert!(reason.contains(says), "reason should say {says:?}: {body}");
}

/// The tarball of `name@version` as served.
fn get_tarball(reg: &TestRegistry, name: &str, version: &str) -> (u16, Vec<u8>) {
    let bare = name.rsplit('/').next().unwrap_or(name);
    let response = client()
        .get(reg.url(&format!("/{name}/-/{bare}-{version}.tgz")))
        .send()
        .expect("GET tarball");
    let status = response.status().as_u16();
    (status, response.bytes().expect("bytes").to_vec())
}

/// Every version of `name` is listed, with its tarball served byte for byte as published.
#[track_caller]
fn assert_intact(reg: &TestRegistry, name: &str, versions: &[&str]) {
    let response = client()
        .get(reg.url(&format!("/{}", escaped(name))))
        .send()
        .expect("GET packument");
    assert_eq!(response.status().as_u16(), 200, "GET {name}");
    let doc: Value = response.json().expect("packument JSON");
    let listed: Vec<&str> = doc["versions"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(listed, versions, "versions of {name}");
    for version in versions {
        let (status, bytes) = get_tarball(reg, name, version);
        assert_eq!(status, 200, "tarball of {name}@{version}");
        assert_eq!(
            bytes,
            package_tarball(name, version),
            "{name}@{version} bytes"
        );
    }
}

/// `registry doctor` finds nothing wrong, and no temporary blob file was left behind.
#[track_caller]
fn assert_healthy(reg: &TestRegistry) {
    let problems = registry_core::maintenance::doctor(&reg.registry, || {}).expect("doctor runs");
    assert!(problems.is_empty(), "doctor: {problems:?}");
    let tmp = reg.registry.config.blobs_dir().join("tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .expect("blobs/tmp")
        .map_while(Result::ok)
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "temporary blob files: {leftovers:?}");
}

#[test]
fn a_full_disk_answers_507_keeps_what_was_stored_and_recovers_when_space_returns() {
    let disk = Tmpfs::mount();
    let data_dir = disk.root.join("data");
    let reg = TestRegistry::start_with(|c| c.data_dir = data_dir);
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "before", "1.0.0"), 201);
    assert_intact(&reg, "before", &["1.0.0"]);

    let filler = fill(&disk.root);
    publishes_refused(&reg, &token, 507, "disk is full");
    // What was stored before is still served, and nothing of the refused publishes is.
    assert_intact(&reg, "before", &["1.0.0"]);
    let missing = client().get(reg.url("/after")).send().expect("GET after");
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(get_tarball(&reg, "before", "1.1.0").0, 404);
    // A write with no tarball may still fit in the pages the database already has; if it
    // does not, it is a 507 too, never a 500.
    let response = tag_stable(&reg, &token);
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    assert!(
        status < 300 || status == 507,
        "dist-tag on a full disk: {status} {body}"
    );
    if status == 507 {
        assert_error_body(&body, "disk is full");
    }
    assert_healthy(&reg);

    // Room again: the very same publishes go through, and nothing earlier changed.
    std::fs::remove_file(&filler).expect("remove filler");
    publishes_go_through(&reg, &token);
    reg.stop();
}

/// `mount -o remount,ro` is refused (EBUSY) while a process holds files of the file system
/// open for writing — as the daemon does its database — and only the kernel forces it (on I/O
/// errors). So the data directory is made read-only the way the daemon sees it for every file
/// it opens from then on: a bind mount of the directory on itself, remounted read-only and
/// then read-write. (The database connections opened before keep writing through the
/// original mount, so this checks the blob store's side of a publish, which comes first.)
#[test]
fn a_data_dir_made_read_only_while_serving_answers_503_and_recovers_when_writable() {
    let mut disk = Tmpfs::mount();
    let data_dir = disk.root.join("data");
    let reg = TestRegistry::start_with(|c| c.data_dir = data_dir.clone());
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "before", "1.0.0"), 201);

    disk.bind_on_itself(&data_dir);
    Tmpfs::remount_bind(&data_dir, "ro");
    let probe = std::fs::File::create(data_dir.join("probe"));
    assert!(
        probe.is_err_and(|e| e.kind() == std::io::ErrorKind::ReadOnlyFilesystem),
        "the data directory should be read-only now"
    );
    publishes_refused(&reg, &token, 503, "cannot write to its data directory");
    assert_intact(&reg, "before", &["1.0.0"]);
    assert_eq!(get_tarball(&reg, "before", "1.1.0").0, 404);

    Tmpfs::remount_bind(&data_dir, "rw");
    publishes_go_through(&reg, &token);
    reg.stop();
}

/// A data directory that is read-only when the daemon starts (`mount -o remount,ro` while it
/// was stopped): it serves what it has, and every write — a publish, and a dist-tag change
/// that only touches the database — is a 503 with a reason. Read-write again, it publishes.
#[test]
fn a_daemon_started_on_a_read_only_data_dir_serves_reads_and_answers_503_to_writes() {
    let disk = Tmpfs::mount();
    let data_dir = disk.root.join("data");
    let root = disk.root.to_str().expect("utf-8 path");
    let reg = TestRegistry::start_with(|c| c.data_dir = data_dir.clone());
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "before", "1.0.0"), 201);
    reg.stop();

    run("mount", &["-o", "remount,ro", root]).expect("remount read-only");
    let reg = TestRegistry::start_with(|c| c.data_dir = data_dir.clone());
    assert_intact(&reg, "before", &["1.0.0"]);
    publishes_refused(&reg, &token, 503, "cannot write to its");
    let response = tag_stable(&reg, &token);
    assert_eq!(response.status().as_u16(), 503, "dist-tag read-only");
    let body: Value = response.json().expect("a JSON error body");
    assert_error_body(&body, "cannot write to its database");
    assert_intact(&reg, "before", &["1.0.0"]);
    let problems = registry_core::maintenance::doctor(&reg.registry, || {}).expect("doctor runs");
    assert!(problems.is_empty(), "doctor: {problems:?}");
    reg.stop();

    run("mount", &["-o", "remount,rw", root]).expect("remount read-write");
    let reg = TestRegistry::start_with(|c| c.data_dir = data_dir.clone());
    publishes_go_through(&reg, &token);
    reg.stop();
}

#[test]
fn a_missing_blob_is_a_clear_500_and_doctor_reports_it() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "gone", "1.0.0"), 201);
    assert_eq!(publish(&reg, &token, "kept", "1.0.0"), 201);
    assert_healthy(&reg);

    let tgz = package_tarball("gone", "1.0.0");
    let sha512 = hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&tgz));
    let blob = reg
        .registry
        .config
        .blobs_dir()
        .join(&sha512[0..2])
        .join(&sha512[2..4])
        .join(&sha512);
    std::fs::remove_file(&blob).expect("delete the blob");

    let response = client()
        .get(reg.url("/gone/-/gone-1.0.0.tgz"))
        .send()
        .expect("GET tarball");
    assert_eq!(response.status().as_u16(), 500);
    let body: Value = response.json().expect("a JSON error body");
    assert_error_body(&body, "gone@1.0.0");
    assert_error_body(&body, "registry doctor");
    assert!(
        !body
            .to_string()
            .contains(&*reg.registry.config.data_dir.to_string_lossy()),
        "no file system path reaches the client: {body}"
    );
    // The packument still lists it (it was published); the other package is unaffected.
    assert_intact(&reg, "kept", &["1.0.0"]);

    let problems = registry_core::maintenance::doctor(&reg.registry, || {}).expect("doctor runs");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, "missing-blob");
    assert_eq!(problems[0].package, "gone");
    assert_eq!(problems[0].version.as_deref(), Some("1.0.0"));
    reg.stop();
}
