mod common;

use common::*;

#[test]
fn a_published_package_can_be_read_back() {
    let reg = TestRegistry::start();
    let token = reg.user_with_token("alice");
    assert_eq!(publish(&reg, &token, "hello", "1.0.0"), 201);
    let doc: serde_json::Value = client()
        .get(reg.url("/hello"))
        .send()
        .and_then(|r| r.json())
        .expect("packument");
    assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
    assert_eq!(
        doc["versions"]["1.0.0"]["dist"]["tarball"],
        format!("{}/hello/-/hello-1.0.0.tgz", reg.base)
    );
}
