//! Package documents: `GET /:pkg` (full, or abbreviated on `Accept:
//! application/vnd.npm.install-v1+json`), `GET /:pkg/:version|:tag`, and `PUT /:pkg` (publish).

use std::collections::HashMap;
use std::sync::Arc;

use http::{header, HeaderValue, StatusCode};
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::packages::documents;
use registry_core::packages::names::PackageName;
use registry_core::packages::packument::PackumentFlavor;
use registry_core::packages::publish::{publish, PublishLimits, PublishOutcome};
use registry_core::packages::tags;
use registry_core::packages::unpublish::{unpublish_package, unpublish_tarball};
use registry_core::registry::package_not_found;
use registry_core::store::CommitStamp;
use registry_core::upstream::client::Upstream;
use registry_core::upstream::guard;
use registry_core::upstream::prefetch;
use registry_core::upstream::proxy::{self, CacheOutcome};
use registry_core::upstream::registries;
use registry_core::Error;
use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, origin, tarballs, with_state, Route};
use crate::auth::identity;
use crate::body;
use crate::cache::Rendered;
use crate::error::{reject, rejection_response};
use crate::package_path::{package_route, PackageRoute};
use crate::reply::{accepts_gzip, etag_matches, json_response, not_modified};
use crate::state::AppState;

/// How the proxy's cache answered a proxied document: `hit`, `miss`, `revalidated` or
/// `stale` (the upstream failed; the cached copy is older than its `max_age`).
pub const CACHE_STATUS_HEADER: &str = "x-registry-cache";
const ABBREVIATED_MEDIA_TYPE: &str = "application/vnd.npm.install-v1+json";
/// Clients may reuse a packument this long without asking; short, so that new versions show
/// up quickly (revalidation is a cheap 304).
const PACKUMENT_MAX_AGE: &str = "max-age=60";

/// The request headers a read cares about.
#[derive(Debug, Default, Clone)]
pub struct ReadHeaders {
    pub accept: Option<String>,
    pub accept_encoding: Option<String>,
    pub if_none_match: Option<String>,
    /// npm's name for the command it runs (`install`, `view`, …).
    pub npm_command: Option<String>,
}

impl ReadHeaders {
    /// Whether the request resolves an install, which asks for the dependencies' documents
    /// next: every abbreviated one (pnpm, yarn, older npm), and npm 11's full ones when its
    /// command installs.
    fn installs(&self, flavor: PackumentFlavor) -> bool {
        flavor == PackumentFlavor::Abbreviated
            || self
                .npm_command
                .as_deref()
                .is_some_and(|command| INSTALLING_COMMANDS.contains(&command))
    }
}

/// The npm commands that resolve a dependency tree from the registry's documents.
const INSTALLING_COMMANDS: &[&str] = &[
    "install",
    "update",
    "exec",
    "install-test",
    "install-ci-test",
    "dedupe",
];
const NPM_COMMAND: &str = "npm-command";

fn read_headers() -> impl Filter<Extract = (ReadHeaders,), Error = Rejection> + Clone {
    warp::header::optional::<String>("accept")
        .and(warp::header::optional::<String>("accept-encoding"))
        .and(warp::header::optional::<String>("if-none-match"))
        .and(warp::header::optional::<String>(NPM_COMMAND))
        .map(
            |accept, accept_encoding, if_none_match, npm_command| ReadHeaders {
                accept,
                accept_encoding,
                if_none_match,
                npm_command,
            },
        )
}

pub fn routes(state: AppState) -> Route {
    let limit = body::Limits::of(&state.registry().config);

    // GET|HEAD /:pkg, /:pkg/:version|:tag, /:pkg/-/:file.tgz
    let read = package_route()
        .and(warp::get().or(warp::head()).unify())
        .and(warp::method())
        .and(warp::query::<HashMap<String, String>>())
        .and(read_headers())
        .and(origin(state.clone()))
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(read);

    // PUT /:pkg — publish (with _attachments) or a document update (star, owners, deprecate,
    // unpublish of versions); PUT /:pkg/-rev/:rev — a document update; PUT /:pkg/:tag — set a
    // dist-tag (the body is the version as a JSON string)
    let write = package_route()
        .and(warp::put())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and(body::json(limit))
        .and_then(write);

    // DELETE /:pkg/-rev/:rev — unpublish the package; DELETE /:pkg/-/:file/-rev/:rev — a version
    let delete = package_route()
        .and(warp::delete())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(delete);

    boxed(read.or(write).unify().or(delete).unify())
}

/// A GET or HEAD of a packument, a version or a tarball by an anonymous client, the bulk of
/// every install, answered by the same handler as through the routes but without warp's filter
/// chain. `None` sends the request through the routes: another method or path, a query string,
/// credentials (to be checked), or a header that is not text (to be refused there).
pub async fn answer_hot_read<B>(state: &AppState, request: &http::Request<B>) -> Option<Response> {
    let method = request.method();
    if (method != http::Method::GET && method != http::Method::HEAD)
        || request.uri().query().is_some()
        || request.headers().contains_key(header::AUTHORIZATION)
    {
        return None;
    }
    let route = match crate::package_path::parse(request.uri().path()) {
        Ok(Some(
            route @ (PackageRoute::Document(_)
            | PackageRoute::Version(..)
            | PackageRoute::Tarball(..)),
        )) => route,
        _ => return None,
    };
    // Some(None): absent; None: present but not text.
    let text = |name: header::HeaderName| match request.headers().get(name) {
        None => Some(None),
        Some(value) => value.to_str().ok().map(|v| Some(v.to_string())),
    };
    let headers = ReadHeaders {
        accept: text(header::ACCEPT)?,
        accept_encoding: text(header::ACCEPT_ENCODING)?,
        if_none_match: text(header::IF_NONE_MATCH)?,
        npm_command: text(header::HeaderName::from_static(NPM_COMMAND))?,
    };
    let origin = super::origin_of(state, text(header::HOST)?.as_deref());
    read(
        route,
        method.clone(),
        HashMap::new(),
        headers,
        origin,
        None,
        state.clone(),
    )
    .await
    .ok()
}

async fn read(
    route: PackageRoute,
    method: http::Method,
    query: HashMap<String, String>,
    headers: ReadHeaders,
    origin: String,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let answer = match route {
        PackageRoute::Document(name) => {
            let write_mode = query.get("write").is_some_and(|v| v == "true");
            packument(state, caller, name, write_mode, headers, origin).await
        }
        PackageRoute::Version(name, spec) => version(state, caller, name, spec, origin).await,
        PackageRoute::Tarball(name, file) => {
            tarballs::respond(state, caller, name, file, method, headers).await
        }
        PackageRoute::Revision(..) | PackageRoute::TarballRevision(..) => Err(reject(
            Error::not_found("revisions are not readable resources"),
        )),
    };
    // No other route serves a package path, so a refusal here is final: answering it at once
    // spares a miss (a 404, the commonest refusal) the walk through every other route.
    Ok(answer.unwrap_or_else(|rejection| rejection_response(&rejection)))
}

fn wants_abbreviated(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let zero = parts.any(|p| p == "q=0" || p == "q=0.0");
            media.eq_ignore_ascii_case(ABBREVIATED_MEDIA_TYPE) && !zero
        })
    })
}

/// The rendered packument for `origin`, from the cache when the package's revision is unchanged;
/// for a name that is not local, the proxied document and how the cache answered.
///
/// The byte cache is shared by every reader: whether this reader may see the package is
/// decided before the cache is looked at, on every request, so cached bytes never cross an
/// access boundary.
async fn rendered_packument(
    state: &AppState,
    caller: Option<Arc<Identity>>,
    name: PackageName,
    flavor: PackumentFlavor,
    origin: String,
    installing: bool,
) -> Result<(Arc<Rendered>, Option<CacheOutcome>), Rejection> {
    // The hot path: the package's state (block, revision, access) on this thread — from
    // memory while nothing was committed, else one indexed statement — and a cache hit, with
    // no hop to a blocking thread. It is checked on every request, before the cache, so that
    // a write, a block or an access change from another process (the CLI) is seen at once.
    // One look at whether anything was committed serves every memo this read consults.
    let stamp = state.registry().store.commit_stamp();
    if let Some(etag) = state
        .registry()
        .packument_etag_now(&name, flavor, caller.as_deref(), stamp)
    {
        match etag.map_err(reject)? {
            None => return proxied_packument(state, name, flavor, origin, installing, stamp).await,
            Some(etag) => {
                if let Some(hit) = state
                    .packuments()
                    .get(name.as_str(), flavor, &origin, &etag)
                {
                    return Ok((hit, None));
                }
            }
        }
    }
    let local_name = name.clone();
    let local_origin = origin.clone();
    let local = state
        .run(move |state| {
            let (name, origin) = (local_name, local_origin);
            let registry = state.registry();
            let Some(etag) = registry.packument_etag(&name, flavor, caller.as_deref())? else {
                return Ok(None);
            };
            let cache = state.packuments();
            if let Some(hit) = cache.get(name.as_str(), flavor, &origin, &etag) {
                return Ok(Some(hit));
            }
            let built = registry.packument(&name, flavor)?;
            let rendered = Arc::new(Rendered::render(
                &built.json,
                &built.etag,
                &origin,
                built.tombstone,
            ));
            cache.insert(
                name.as_str(),
                flavor,
                &origin,
                &built.etag,
                rendered.clone(),
            );
            Ok(Some(rendered))
        })
        .await?;
    match local {
        Some(rendered) => Ok((rendered, None)),
        None => proxied_packument(state, name, flavor, origin, installing, stamp).await,
    }
}

/// The registry a name that no configured upstream serves was synced from, if any; a miss
/// (every 404) is answered on this thread, from memory as of `stamp` or when a connection is
/// free.
pub(super) async fn synced_source(
    state: &AppState,
    name: &PackageName,
    stamp: Option<CommitStamp>,
) -> Result<Option<Arc<Upstream>>, Rejection> {
    if let Some(source) = registries::synced_source_now(state.registry(), name.as_str(), stamp) {
        return source.map_err(reject);
    }
    let lookup = name.clone();
    state
        .run(move |state| registries::synced_source(state.registry(), lookup.as_str()))
        .await
}

/// A name with no local package: the document of the upstream that serves it, rendered into
/// the same byte cache as local documents; 404 when no upstream does. An install's first fetch
/// of it fetches its dependencies ahead (their documents and chosen tarballs).
async fn proxied_packument(
    state: &AppState,
    name: PackageName,
    flavor: PackumentFlavor,
    origin: String,
    installing: bool,
    stamp: Option<CommitStamp>,
) -> Result<(Arc<Rendered>, Option<CacheOutcome>), Rejection> {
    let registry = state.registry();
    let upstream = match registry.upstreams.for_name(name.as_str()) {
        Some(upstream) => upstream,
        None => {
            // A name synced from a registry added over HTTP is served from what was synced.
            synced_source(state, &name, stamp)
                .await?
                .ok_or_else(|| reject(package_not_found(&name)))?
        }
    };
    let document = proxy::document(registry, &upstream, &name, flavor)
        .await
        .map_err(reject)?;
    if let Some(outline) = document.first_fetch.filter(|_| installing) {
        prefetch::dependencies(registry, flavor, outline.latest_dependencies);
    }
    let outcome = Some(document.outcome);
    if let Some(hit) = state
        .packuments()
        .get(name.as_str(), flavor, &origin, &document.etag)
    {
        return Ok((hit, outcome));
    }
    let rendered = state
        .run(move |state| {
            let (body, etag) = proxy::document_body(state.registry(), &name, flavor)?;
            let rendered = Arc::new(Rendered::render(&body, &etag, &origin, false));
            state
                .packuments()
                .insert(name.as_str(), flavor, &origin, &etag, rendered.clone());
            Ok(rendered)
        })
        .await?;
    Ok((rendered, outcome))
}

async fn packument(
    state: AppState,
    caller: Option<Arc<Identity>>,
    name: PackageName,
    write_mode: bool,
    headers: ReadHeaders,
    origin: String,
) -> Result<Response, Rejection> {
    // `?write=true` always gets the full document, whatever the Accept header says.
    let flavor = if !write_mode && wants_abbreviated(headers.accept.as_deref()) {
        PackumentFlavor::Abbreviated
    } else {
        PackumentFlavor::Full
    };
    let installing = headers.installs(flavor);
    let (rendered, cache_outcome) =
        rendered_packument(&state, caller, name.clone(), flavor, origin, installing).await?;
    if rendered.tombstone {
        return Ok(tombstone_response(&name, &rendered));
    }
    let cache_control = if write_mode {
        "no-store"
    } else {
        PACKUMENT_MAX_AGE
    };
    let mut response = if etag_matches(headers.if_none_match.as_deref(), &rendered.etag) {
        not_modified(&rendered.etag)
    } else if accepts_gzip(headers.accept_encoding.as_deref()) {
        let mut response = Response::new(rendered.gzip().into());
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        Response::new(rendered.json.clone().into())
    };
    let content_type = match flavor {
        PackumentFlavor::Full => "application/json",
        PackumentFlavor::Abbreviated => ABBREVIATED_MEDIA_TYPE,
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if let Ok(etag) = HeaderValue::from_str(&rendered.etag) {
        h.insert(header::ETAG, etag);
    }
    if let Some(outcome) = cache_outcome {
        h.insert(
            CACHE_STATUS_HEADER,
            HeaderValue::from_static(outcome.as_str()),
        );
    }
    Ok(response)
}

/// A fully unpublished package: 404, with the tombstone (`time.unpublished`) in the body.
fn tombstone_response(name: &PackageName, rendered: &Rendered) -> Response {
    let mut doc: Value = serde_json::from_slice(&rendered.json).unwrap_or_else(|_| json!({}));
    let when = doc["time"]["unpublished"]["time"]
        .as_str()
        .unwrap_or("an earlier date")
        .to_string();
    let message = format!("package {name} was unpublished on {when}");
    if let Some(map) = doc.as_object_mut() {
        map.insert("error".into(), message.clone().into());
        map.insert("reason".into(), message.into());
    }
    json_response(StatusCode::NOT_FOUND, &doc)
}

/// `GET /:pkg/:version` or `GET /:pkg/:tag`: one version's manifest.
async fn version(
    state: AppState,
    caller: Option<Arc<Identity>>,
    name: PackageName,
    spec: String,
    origin: String,
) -> Result<Response, Rejection> {
    let (rendered, _) = rendered_packument(
        &state,
        caller,
        name.clone(),
        PackumentFlavor::Full,
        origin,
        false,
    )
    .await?;
    if rendered.tombstone {
        return Ok(tombstone_response(&name, &rendered));
    }
    let manifest = rendered
        .version_manifest(&spec)
        .map_err(|e| {
            reject(Error::Storage(format!(
                "stored packument of {name} is not JSON: {e}"
            )))
        })?
        .ok_or_else(|| {
            reject(Error::not_found(format!(
                "version or tag {spec:?} of {name} not found"
            )))
        })?;
    let mut response = Response::new(manifest.into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn write(
    route: PackageRoute,
    caller: Option<Arc<Identity>>,
    state: AppState,
    body: Value,
) -> Result<Response, Rejection> {
    match route {
        PackageRoute::Document(name) if body.get("_attachments").is_some() => {
            // Only a caller who may publish at all gets the upstream asked about a name.
            require_writer(caller.as_deref()).map_err(reject)?;
            guard::check_new_name(state.registry(), &name)
                .await
                .map_err(reject)?;
            let outcome = state
                .run(move |state| {
                    let registry = state.registry();
                    let writer = require_writer(caller.as_deref())?;
                    publish(
                        &registry.store,
                        registry.blobs.as_ref(),
                        &writer,
                        &name,
                        &body,
                        &PublishLimits::of(&registry.config),
                    )
                })
                .await?;
            let (status, rev) = match outcome {
                PublishOutcome::Published { rev } => {
                    state.metrics().published();
                    (StatusCode::CREATED, Some(rev))
                }
                PublishOutcome::AlreadyPublished => (StatusCode::OK, None),
            };
            Ok(json_response(
                status,
                &json!({ "ok": true, "success": true, "rev": rev }),
            ))
        }
        PackageRoute::Document(name) => update_document(state, caller, name, None, body).await,
        PackageRoute::Revision(name, rev) => {
            update_document(state, caller, name, Some(rev), body).await
        }
        PackageRoute::Version(name, tag) => {
            let version = body.as_str().map(str::to_string).ok_or_else(|| {
                reject(Error::bad_request(
                    "the body must be the version to tag, as a JSON string",
                ))
            })?;
            state
                .run(move |state| {
                    let writer = require_writer(caller.as_deref())?;
                    guard::refuse_proxied_write(state.registry(), &name)?;
                    tags::set(&state.registry().store, &writer, &name, &tag, &version)
                })
                .await?;
            Ok(json_response(StatusCode::CREATED, &json!({ "ok": true })))
        }
        PackageRoute::Tarball(..) | PackageRoute::TarballRevision(..) => Err(reject(
            Error::bad_request("tarballs are published with their package document"),
        )),
    }
}

async fn update_document(
    state: AppState,
    caller: Option<Arc<Identity>>,
    name: PackageName,
    rev: Option<String>,
    body: Value,
) -> Result<Response, Rejection> {
    let rev = state
        .run(move |state| {
            guard::refuse_proxied_write(state.registry(), &name)?;
            documents::apply(
                &state.registry().store,
                caller.as_deref(),
                &name,
                rev.as_deref(),
                &body,
            )
        })
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "ok": true, "rev": rev }),
    ))
}

async fn delete(
    route: PackageRoute,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    state
        .run(move |state| {
            let store = &state.registry().store;
            let writer = require_writer(caller.as_deref())?;
            if let PackageRoute::Revision(name, _) | PackageRoute::TarballRevision(name, ..) =
                &route
            {
                guard::refuse_proxied_write(state.registry(), name)?;
            }
            match route {
                PackageRoute::Revision(name, rev) => unpublish_package(store, &writer, &name, &rev),
                PackageRoute::TarballRevision(name, file, _rev) => {
                    unpublish_tarball(store, &writer, &name, &file)
                }
                _ => Err(Error::bad_request(
                    "unpublish with DELETE /:package/-rev/:rev or \
                     DELETE /:package/-/:file/-rev/:rev",
                )),
            }
        })
        .await?;
    Ok(json_response(StatusCode::OK, &json!({ "ok": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corgi_accept_headers() {
        assert!(wants_abbreviated(Some(
            "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
        )));
        assert!(!wants_abbreviated(Some("application/json")));
        assert!(!wants_abbreviated(Some(
            "application/vnd.npm.install-v1+json;q=0"
        )));
        assert!(!wants_abbreviated(None));
    }
}
