//! Property-based fuzzing of everything that parses hostile input: package names, tags and
//! versions, tarballs (random bytes and damaged real ones), and whole publish documents.
//! Nothing may panic; what parses must be safe to use as a path; a refused publish is a 4xx
//! and leaves the store as it was.
//!
//! 256 cases per property by default; `PROPTEST_CASES=100000 cargo test --test fuzz_inputs`
//! for a long run.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use registry_core::accounts::auth::authenticate;
use registry_core::accounts::authz::require_writer;
use registry_core::packages::names::{validate_tag, validate_version, PackageName};
use registry_core::packages::publish::{publish as core_publish, PublishLimits};
use registry_core::packages::tarball::inspect;
use serde_json::{json, Value};

/// Text that looks like what arrives in package paths: name characters, separators,
/// percent-escapes and dots, plus anything else now and then.
fn pathish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec!["a", "z", "0", "-", "_", ".", "..", "/", "@", "%2f", "%2e", "%00", "~", " ", "\\", ":", "A", "é"]),
            1 => any::<char>().prop_map(|c| Box::leak(c.to_string().into_boxed_str()) as &str),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn a_package_name_that_parses_is_safe_as_a_path(raw in pathish()) {
        if let Ok(name) = PackageName::parse(&raw) {
            let name = name.as_str();
            prop_assert!(name.len() <= 214);
            // `a..b` is a legal npm name; what must never come out is a path segment that
            // means "here" or "up".
            prop_assert!(
                name.split('/').all(|part| !part.is_empty() && part != "." && part != ".."),
                "{name}"
            );
            prop_assert!(!name.contains('\\') && !name.contains('\0') && !name.contains(' '));
            prop_assert!(name.matches('/').count() <= usize::from(name.starts_with('@')));
            prop_assert!(!name.starts_with('.') && !name.starts_with('/'));
        }
    }

    #[test]
    fn tags_and_versions_never_panic(raw in pathish()) {
        let _ = validate_tag(&raw);
        if validate_version(&raw).is_ok() {
            prop_assert!(!raw.contains('/') && !raw.contains(".."));
        }
    }

    #[test]
    fn random_bytes_are_never_a_valid_tarball(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(inspect(&bytes).is_err());
    }

    #[test]
    fn damaged_tarballs_are_refused_or_read_but_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut tgz = package_tarball("fuzzed", "1.0.0");
        for (at, byte) in flips {
            let i = at.index(tgz.len());
            tgz[i] ^= byte;
        }
        if truncate {
            let keep = cut.index(tgz.len());
            tgz.truncate(keep);
        }
        if let Ok(contents) = inspect(&tgz) {
            prop_assert!(contents.manifest.is_object() || !contents.manifest.is_null());
        }
    }
}

/// A JSON value of bounded size and depth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z0-9.@/_-]{0,12}".prop_map(Value::String),
        Just(json!("1.0.0")),
        Just(json!("fuzzed")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_-]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Paths inside a publish document that a mutation may replace or remove (`{name}` is the
/// case's package).
const FIELDS: &[&[&str]] = &[
    &["_id"],
    &["name"],
    &["dist-tags"],
    &["dist-tags", "latest"],
    &["versions"],
    &["versions", "2.0.0"],
    &["versions", "2.0.0", "name"],
    &["versions", "2.0.0", "version"],
    &["versions", "2.0.0", "dist"],
    &["versions", "2.0.0", "dist", "shasum"],
    &["versions", "2.0.0", "dist", "integrity"],
    &["_attachments"],
    &["_attachments", "{name}-2.0.0.tgz"],
    &["_attachments", "{name}-2.0.0.tgz", "data"],
    &["_attachments", "{name}-2.0.0.tgz", "length"],
];

fn mutate(doc: &mut Value, name: &str, path: &[&str], replacement: Option<Value>) {
    let path: Vec<String> = path.iter().map(|key| key.replace("{name}", name)).collect();
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = doc;
    for key in parents {
        match node.get_mut(key) {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        match replacement {
            Some(value) => map.insert(last.clone(), value),
            None => map.remove(last),
        };
    }
}

/// One registry and one publisher for every case: starting a daemon and hashing a password
/// per case would make the property too slow to run often.
struct Shared {
    reg: TestRegistry,
    identity: registry_core::accounts::auth::Identity,
    next: AtomicU64,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let reg = TestRegistry::start();
        let token = reg.user_with_token("fuzzer");
        let identity = authenticate(
            &reg.registry.store,
            &reg.registry.credentials,
            Some(&format!("Bearer {token}")),
        )
        .expect("auth")
        .expect("identity");
        Shared {
            reg,
            identity,
            next: AtomicU64::new(0),
        }
    })
}

proptest! {
    #[test]
    fn a_mutated_publish_document_is_refused_with_a_4xx_and_changes_nothing(
        mutations in prop::collection::vec(
            (prop::sample::select(FIELDS.to_vec()), prop::option::of(json_value())),
            1..4,
        ),
    ) {
        let shared = shared();
        let store = &shared.reg.registry.store;
        let name = format!("fuzzed-{}", shared.next.fetch_add(1, Ordering::Relaxed));
        let tgz = package_tarball(&name, "2.0.0");
        let mut doc = publish_body(&name, "2.0.0", &tgz);
        for (path, replacement) in &mutations {
            mutate(&mut doc, &name, path, replacement.clone());
        }
        let writer = require_writer(Some(&shared.identity)).expect("writer");
        let package = PackageName::parse(&name).expect("name");
        let limits = PublishLimits::of(&shared.reg.registry.config);
        match core_publish(store, shared.reg.registry.blobs.as_ref(), &writer, &package, &doc, &limits) {
            Ok(_) => {
                // Some mutations are harmless (another description, say): then the version
                // must really be there.
                let stored = store.read(|db| {
                    let package = db.package_by_name(&name)?.expect("package");
                    db.version_state(package.id, "2.0.0")
                }).expect("read");
                prop_assert!(stored.is_some());
            }
            Err(error) => {
                prop_assert!((400..500).contains(&error.status()), "{} for {:?}", error, mutations);
                // Each case has a package of its own: a refused publish leaves no trace of it
                // (the registry-wide sequence is no measure, other tests share the registry).
                let written = store
                    .read(|db| Ok(db.package_by_name(&name)?.is_some()))
                    .expect("read");
                prop_assert!(!written, "a refused publish wrote {}", name);
            }
        }
    }
}

#[test]
fn the_fuzz_harness_really_publishes_an_unmutated_document() {
    // Guards the property above against a harness that refuses everything.
    let shared = shared();
    let name = format!("fuzzed-{}", shared.next.fetch_add(1, Ordering::Relaxed));
    let tgz = package_tarball(&name, "2.0.0");
    let writer = require_writer(Some(&shared.identity)).expect("writer");
    let package = PackageName::parse(&name).expect("name");
    let store = &shared.reg.registry.store;
    let outcome = core_publish(
        store,
        shared.reg.registry.blobs.as_ref(),
        &writer,
        &package,
        &publish_body(&name, "2.0.0", &tgz),
        &PublishLimits::of(&shared.reg.registry.config),
    );
    assert!(outcome.is_ok(), "{outcome:?}");
}
