//! Download counts: npm's `GET /downloads/point/:period[/:pkg]` and
//! `GET /downloads/range/:period/:pkg` (with cnpmcore's per-version `versions` trends), and our
//! `GET /-/downloads/top/:period` for the most downloaded packages.
//!
//! Days without downloads: range answers list every day of the range with `downloads: 0`, in
//! the total and in each version's series (npm does the same for the total; a version that was
//! not downloaded at all in the range is left out of `versions`). Periods are read by
//! `registry_core::packages::downloads::parse_period`, whose comment says where named periods end.

use std::collections::HashMap;

use http::{header, HeaderValue, StatusCode};
use registry_core::packages::downloads::{self, format_day, RangeReport};
use registry_core::Error;
use serde_json::{json, Map, Value};
use time::Date;
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use std::sync::Arc;

use registry_core::accounts::auth::Identity;

use super::{boxed, with_state, Route};
use crate::auth::identity;
use crate::error::reject;
use crate::package_path::{parse_package_list, percent_decode};
use crate::reply::json_response;
use crate::state::AppState;

/// `/-/downloads/top` answers this many packages unless `?limit=` says otherwise.
const DEFAULT_TOP: usize = 20;
const MAX_TOP: usize = 1000;

pub fn routes(state: AppState) -> Route {
    // GET /downloads/point/:period — the registry's total; /downloads/point/:period/:pkg[,pkg…]
    let point = warp::path!("downloads" / "point" / String / ..)
        .and(warp::path::tail())
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(point);

    // GET /downloads/range/:period/:pkg — daily downloads, in total and per version
    let range = warp::path!("downloads" / "range" / String / ..)
        .and(warp::path::tail())
        .and(warp::get())
        .and(identity(state.clone()))
        .and(with_state(state.clone()))
        .and_then(range);

    // GET /-/downloads/top/:period?limit=20 — the most downloaded packages (our extension)
    let top = warp::path!("-" / "downloads" / "top" / String)
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(identity(state.clone()))
        .and(with_state(state))
        .and_then(top);

    boxed(point.or(range).unify().or(top).unify())
}

fn period(raw: &str) -> Result<(Date, Date), Error> {
    // `:` may arrive as %3A.
    downloads::parse_period(&percent_decode(raw)?, downloads::today())
}

async fn point(
    period_raw: String,
    tail: Tail,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let tail = tail.as_str().to_string();
    let body = state
        .run(move |state| {
            let (start, end) = period(&period_raw)?;
            let store = &state.registry().store;
            let (first, last) = (format_day(start), format_day(end));
            if tail.is_empty() {
                let total = downloads::total(store, start, end, caller.as_deref())?;
                return Ok(json!({ "downloads": total, "start": first, "end": last }));
            }
            let names = parse_package_list(&tail)?;
            let counts = downloads::point(store, &names, start, end, caller.as_deref())?;
            let one = |(package, count): (String, u64)| {
                json!({ "downloads": count, "start": first, "end": last, "package": package })
            };
            if names.len() == 1 {
                return Ok(counts.into_iter().map(one).next().unwrap_or(Value::Null));
            }
            // npm's bulk answer: an object keyed by package name.
            let by_name: Map<String, Value> = counts
                .into_iter()
                .map(|entry| (entry.0.clone(), one(entry)))
                .collect();
            Ok(Value::Object(by_name))
        })
        .await?;
    Ok(fresh(json_response(StatusCode::OK, &body)))
}

async fn range(
    period_raw: String,
    tail: Tail,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let tail = tail.as_str().to_string();
    let report = state
        .run(move |state| {
            let (start, end) = period(&period_raw)?;
            if tail.is_empty() {
                return Err(Error::bad_request(
                    "a range query needs a package: /downloads/range/:period/:package",
                ));
            }
            let names = parse_package_list(&tail)?;
            let [name] = names.as_slice() else {
                return Err(Error::bad_request(
                    "a range query takes one package, not a comma-separated list",
                ));
            };
            downloads::range(&state.registry().store, name, start, end, caller.as_deref())
        })
        .await?;
    Ok(fresh(json_response(StatusCode::OK, &range_json(&report))))
}

fn series(days: &[(Date, u64)]) -> Value {
    Value::Array(
        days.iter()
            .map(|(day, count)| json!({ "day": format_day(*day), "downloads": count }))
            .collect(),
    )
}

fn range_json(report: &RangeReport) -> Value {
    let versions: Map<String, Value> = report
        .versions
        .iter()
        .map(|(version, days)| (version.clone(), series(days)))
        .collect();
    json!({
        "downloads": series(&report.days),
        "start": format_day(report.start),
        "end": format_day(report.end),
        "package": report.package,
        "versions": versions,
    })
}

async fn top(
    period_raw: String,
    query: HashMap<String, String>,
    caller: Option<Arc<Identity>>,
    state: AppState,
) -> Result<Response, Rejection> {
    let limit = match query.get("limit") {
        None => DEFAULT_TOP,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => n,
            _ => {
                return Err(reject(Error::bad_request(format!(
                    "limit must be a number from 1 to {MAX_TOP}, not {text:?}"
                ))))
            }
        },
    };
    let body = state
        .run(move |state| {
            let (start, end) = period(&period_raw)?;
            let packages = downloads::top(
                &state.registry().store,
                start,
                end,
                limit,
                caller.as_deref(),
            )?;
            let packages: Vec<Value> = packages
                .into_iter()
                .map(|(package, count)| json!({ "package": package, "downloads": count }))
                .collect();
            Ok(json!({
                "start": format_day(start),
                "end": format_day(end),
                "packages": packages,
            }))
        })
        .await?;
    Ok(fresh(json_response(StatusCode::OK, &body)))
}

/// Counts grow with every flush: a client must not reuse an answer.
fn fresh(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
