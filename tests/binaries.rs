//! The binary mirror against an in-test upstream that serves an nginx-autoindex listing and
//! files: `/-/binary/` lists the configured binaries, directories become JSON entries, files
//! are mirrored once and then served from the blob store even with the upstream gone.

mod common;

use common::fake_http::{Canned, FakeHttp};
use common::{client, TestRegistry};
use registry_core::upstream::config::{BinaryConfig, BinaryFile};
use serde_json::Value;

const ROOT_LISTING: &str = r#"<html>
<head><title>Index of /dist/</title></head>
<body>
<h1>Index of /dist/</h1><hr><pre><a href="../">../</a>
<a href="v1.0.0/">v1.0.0/</a>                                            19-Apr-2022 18:16                   -
<a href="latest/">latest/</a>                                            01-Jan-2024 10:00                   -
<a href="SHASUMS256.txt">SHASUMS256.txt</a>                                     01-Jan-2024 10:05                  77
<a href="with%20space.txt">with space.txt</a>                                     02-Jan-2024 11:00                   5
</pre><hr></body>
</html>
"#;

const V1_LISTING: &str = r#"<html><body><pre><a href="../">../</a>
<a href="node-v1.0.0.tar.gz">node-v1.0.0.tar.gz</a>                                 19-Apr-2022 18:16              300000
</pre></body></html>
"#;

/// 300 000 bytes that are not all alike.
fn tarball_bytes() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn upstream() -> FakeHttp {
    FakeHttp::start(|request| match request.path.as_str() {
        "/dist/" => Canned::new(200, "text/html", ROOT_LISTING),
        "/dist/v1.0.0/" => Canned::new(200, "text/html", V1_LISTING),
        "/dist/v1.0.0" => Canned::redirect("/dist/v1.0.0/"),
        "/dist/v1.0.0/node-v1.0.0.tar.gz" => {
            Canned::new(200, "application/octet-stream", tarball_bytes())
        }
        "/dist/with%20space.txt" => Canned::new(200, "text/plain", "hello"),
        "/dist/broken.txt" => Canned::new(500, "text/plain", "oops"),
        _ => Canned::not_found(),
    })
}

fn binary(name: &str, dist_url: &str) -> BinaryConfig {
    BinaryConfig::from_file(BinaryFile {
        name: name.into(),
        dist_url: dist_url.into(),
        description: Some(format!("{name} binaries")),
        repo_url: Some(format!("https://github.com/example/{name}")),
    })
    .unwrap_or_else(|e| panic!("binary config: {e}"))
}

/// A port that refuses connections.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/dist/")
}

fn mirror(up: &FakeHttp) -> TestRegistry {
    let node = binary("node", &up.url("/dist/"));
    let down = binary("down", &dead_url());
    TestRegistry::start_with(move |config| config.binaries = vec![node, down])
}

fn get_json(url: &str) -> (u16, Value) {
    let response = client().get(url).send().expect("request");
    let status = response.status().as_u16();
    let body = response.json::<Value>().unwrap_or(Value::Null);
    (status, body)
}

fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let response = client().get(url).send().expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().expect("body").to_vec())
}

#[test]
fn the_configured_binaries_are_listed_in_cnpmcores_shape() {
    let up = upstream();
    let reg = mirror(&up);
    let (status, body) = get_json(&reg.url("/-/binary/"));
    assert_eq!(status, 200, "{body}");
    let list = body.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{body}");
    assert_eq!(list[0]["name"], "node/");
    assert_eq!(list[0]["category"], "node/");
    assert_eq!(list[0]["description"], "node binaries");
    assert_eq!(list[0]["distUrl"], up.url("/dist/"));
    assert_eq!(list[0]["repoUrl"], "https://github.com/example/node");
    assert_eq!(list[0]["type"], "dir");
    assert_eq!(list[0]["url"], reg.url("/-/binary/node/"));
    assert_eq!(list[1]["name"], "down/");
    assert_eq!(up.requests().len(), 0, "listing binaries asks no upstream");
}

#[test]
fn a_directory_is_listed_from_the_upstreams_index() {
    let up = upstream();
    let reg = mirror(&up);
    let (status, body) = get_json(&reg.url("/-/binary/node/"));
    assert_eq!(status, 200, "{body}");
    let entries = body.as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        names,
        ["v1.0.0/", "latest/", "SHASUMS256.txt", "with space.txt"]
    );
    assert_eq!(entries[0]["type"], "dir");
    assert_eq!(entries[0]["date"], "2022-04-19T18:16:00.000Z");
    assert_eq!(entries[0]["url"], reg.url("/-/binary/node/v1.0.0/"));
    assert!(entries[0].get("size").is_none(), "a directory has no size");
    assert_eq!(entries[2]["type"], "file");
    assert_eq!(entries[2]["size"], 77);
    assert_eq!(entries[2]["url"], reg.url("/-/binary/node/SHASUMS256.txt"));
    assert_eq!(
        entries[3]["url"],
        reg.url("/-/binary/node/with%20space.txt")
    );

    // A subdirectory, also asked without its slash (the upstream redirects to it).
    for path in ["/-/binary/node/v1.0.0/", "/-/binary/node/v1.0.0"] {
        let (status, body) = get_json(&reg.url(path));
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body[0]["name"], "node-v1.0.0.tar.gz", "{path}");
        assert_eq!(body[0]["size"], 300_000, "{path}");
        assert_eq!(
            body[0]["url"],
            reg.url("/-/binary/node/v1.0.0/node-v1.0.0.tar.gz"),
            "{path}"
        );
    }

    // ?since= and ?limit=
    let (_, since) = get_json(&reg.url("/-/binary/node/?since=2024-01-01T10:01:00Z"));
    let names: Vec<&str> = since
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["SHASUMS256.txt", "with space.txt"]);
    let (_, limited) = get_json(&reg.url("/-/binary/node/?limit=1"));
    assert_eq!(limited.as_array().map(Vec::len), Some(1));
    let (status, body) = get_json(&reg.url("/-/binary/node/?limit=zero"));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_file_is_mirrored_once_and_served_from_the_cache_when_the_upstream_is_gone() {
    let up = upstream();
    let reg = mirror(&up);
    let url = reg.url("/-/binary/node/v1.0.0/node-v1.0.0.tar.gz");
    let upstream_path = "/dist/v1.0.0/node-v1.0.0.tar.gz";
    let (status, first) = get_bytes(&url);
    assert_eq!(status, 200);
    assert!(first == tarball_bytes(), "byte-identical");
    assert_eq!(up.count(upstream_path), 1);

    let (status, second) = get_bytes(&url);
    assert_eq!(status, 200);
    assert!(second == tarball_bytes());
    assert_eq!(
        up.count(upstream_path),
        1,
        "the second GET is served from the cache"
    );

    let record = reg
        .registry
        .store
        .read(|db| db.binary_file("node", "v1.0.0/node-v1.0.0.tar.gz"))
        .expect("read")
        .expect("recorded in binary_files");
    assert_eq!(record.size, 300_000);
    assert!(reg.registry.blobs.contains(&record.sha512_hex));

    // A file whose name needs escaping.
    let (status, hello) = get_bytes(&reg.url("/-/binary/node/with%20space.txt"));
    assert_eq!((status, hello.as_slice()), (200, b"hello".as_slice()));

    up.stop();
    let (status, third) = get_bytes(&url);
    assert_eq!(status, 200, "served with the upstream stopped");
    assert!(third == tarball_bytes());
    let (status, body) = get_json(&reg.url("/-/binary/node/"));
    assert_eq!(status, 502, "a directory needs the upstream: {body}");
    assert!(
        body["error"].as_str().unwrap_or_default().contains("node"),
        "{body}"
    );
}

#[test]
fn bad_subpaths_are_refused_with_400() {
    let up = upstream();
    let reg = mirror(&up);
    let long = format!("/-/binary/node/{}", "a".repeat(2000));
    for path in [
        "/-/binary/node/..%2f..%2fetc%2fpasswd",
        "/-/binary/node/v1.0.0%2f..%2f..%2fx",
        "/-/binary/node/a//b",
        "/-/binary/node/a%01b",
        "/-/binary/node/a%5cb",
        "/-/binary/node/%zz",
        long.as_str(),
    ] {
        let (status, body) = get_json(&reg.url(path));
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("invalid binary path") || error.contains("percent-encoding"),
            "{path}: {body}"
        );
        assert_eq!(body["reason"], body["error"]);
    }
    assert_eq!(up.requests().len(), 0, "nothing bad reached the upstream");
}

#[test]
fn an_unknown_binary_is_404_and_an_upstream_404_is_404() {
    let up = upstream();
    let reg = mirror(&up);
    let (status, body) = get_json(&reg.url("/-/binary/python/3.12/"));
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("python"),
        "{body}"
    );
    let (status, body) = get_json(&reg.url("/-/binary/node/v9.9.9/nope.tar.gz"));
    assert_eq!(status, 404, "{body}");
    assert!(body["reason"].is_string(), "{body}");
    let (status, body) = get_json(&reg.url("/-/binary/node/broken.txt"));
    assert_eq!(status, 502, "an upstream 5xx: {body}");
}

#[test]
fn an_upstream_that_is_down_with_nothing_cached_is_502_naming_the_binary() {
    let up = upstream();
    let reg = mirror(&up);
    for path in ["/-/binary/down/v1/file.tar.gz", "/-/binary/down/"] {
        let (status, body) = get_json(&reg.url(path));
        assert_eq!(status, 502, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains("binary down"), "{error}");
        assert_eq!(body["reason"], body["error"]);
    }
}
