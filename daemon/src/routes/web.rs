//! The web UI's assets, embedded in the binary. The pages themselves live in the modules of
//! their resources under `/-/web/` (see `crate::web` for what they share).

use http::{header, HeaderValue};
use warp::reply::Response;
use warp::Filter;

use super::{boxed, Route};
use crate::web::{SCRIPT, STYLESHEET};

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::new(body.into());
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets change only with the binary; an hour keeps pages quick and upgrades visible.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

pub fn routes() -> Route {
    // GET /-/web/static/style.css — the stylesheet of every page
    let style = warp::path!("-" / "web" / "static" / "style.css")
        .and(warp::get())
        .map(|| asset(STYLESHEET, "text/css; charset=utf-8"));

    // GET /-/web/static/app.js — the progressive script (copy buttons)
    let script = warp::path!("-" / "web" / "static" / "app.js")
        .and(warp::get())
        .map(|| asset(SCRIPT, "text/javascript; charset=utf-8"));

    boxed(style.or(script).unify())
}
