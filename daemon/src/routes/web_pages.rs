//! The web UI's content pages: the home page (`GET /` for a browser), search, package and
//! user pages, and "my tokens". Handlers are thin: they read through the core (which limits
//! every answer to what the reader may see) and hand the answer to a renderer in
//! `crate::web`. Failures become an HTML error page with the error's status, never JSON.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use registry_core::accounts::auth::Identity;
use registry_core::accounts::authz::require_writer;
use registry_core::accounts::sessions::WebSession;
use registry_core::accounts::tokens::{
    self, canonical_cidr_whitelist, expiry_after_days, TokenOptions,
};
use registry_core::accounts::users::find_user;
use registry_core::packages::downloads::{self, today};
use registry_core::packages::names::validate_username;
use registry_core::packages::pages;
use registry_core::packages::search::{self as core_search, SearchRequest};
use registry_core::Error;
use time::Duration;
use warp::filters::path::Tail;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::{boxed, with_state, Route};
use crate::package_path::{parse_package_subpath, percent_decode};
use crate::state::AppState;
use crate::web::{
    error_page, form, home, html, package, redirect, require_csrf, search, tokens as token_page,
    user, web_session,
};

type Session = Option<Arc<WebSession>>;

/// Packages in each list of the home page.
const HOME_LIST: u32 = 10;
/// Tokens listed on the tokens page (the core's page maximum).
const TOKENS_LISTED: u64 = tokens::MAX_PAGE_SIZE;
const LOGIN_FOR_TOKENS: &str = "/-/web/login?next=/-/web/tokens";

pub fn routes(state: AppState) -> Route {
    // GET / with Accept: text/html — the home page (npm's JSON `GET /` is in `meta`)
    let home = warp::path::end()
        .and(warp::get())
        .and(accepts_html())
        .and(web_session(state.clone()))
        .and(with_state(state.clone()))
        .then(home_page);

    // GET /-/web/search?q=&page= — search results, 20 a page
    let search = warp::path!("-" / "web" / "search")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(web_session(state.clone()))
        .and(with_state(state.clone()))
        .then(search_page);

    // GET /-/web/package/NAME[/v/VERSION]?days=&versions= — a package's page
    let package = warp::path!("-" / "web" / "package" / ..)
        .and(warp::path::tail())
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(web_session(state.clone()))
        .and(with_state(state.clone()))
        .then(package_page);

    // GET /-/web/user/NAME — the packages a user maintains
    let user = warp::path!("-" / "web" / "user" / String)
        .and(warp::get())
        .and(web_session(state.clone()))
        .and(with_state(state.clone()))
        .then(user_page);

    // GET /-/web/tokens — the signed-in user's tokens and the create form
    let list_tokens = warp::path!("-" / "web" / "tokens")
        .and(warp::get())
        .and(web_session(state.clone()))
        .and(with_state(state.clone()))
        .then(tokens_page);

    // POST /-/web/tokens — create a token (CSRF-checked); the answer shows it once
    let create_token = warp::path!("-" / "web" / "tokens")
        .and(warp::post())
        .and(web_session(state.clone()))
        .and(form())
        .and(with_state(state.clone()))
        .then(create_token);

    // POST /-/web/tokens/KEY/revoke — revoke one (CSRF-checked), then 303 to the list
    let revoke_token = warp::path!("-" / "web" / "tokens" / String / "revoke")
        .and(warp::post())
        .and(web_session(state.clone()))
        .and(form())
        .and(with_state(state))
        .then(revoke_token);

    boxed(
        home.or(search)
            .unify()
            .or(package)
            .unify()
            .or(user)
            .unify()
            .or(list_tokens)
            .unify()
            .or(create_token)
            .unify()
            .or(revoke_token)
            .unify(),
    )
}

/// Passes requests that accept HTML (browsers); npm and other clients fall through to the
/// JSON routes.
fn accepts_html() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("accept")
        .and_then(|accept: Option<String>| async move {
            if accept.is_some_and(|a| a.to_ascii_lowercase().contains("text/html")) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
}

/// Who reads a page: the signed-in user with the rights of their account (no token limits).
fn reader(session: &Session) -> Option<Identity> {
    session.as_ref().map(|s| Identity {
        user: s.user.clone(),
        token: None,
    })
}

/// Runs core work off the async threads, keeping the core's error for the error page.
async fn blocking<T, F>(state: &AppState, operation: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(&AppState) -> Result<T, Error> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || operation(&state))
        .await
        .unwrap_or_else(|e| Err(Error::Storage(format!("a page's task failed: {e}"))))
}

fn answer(session: &Session, result: Result<Response, Error>) -> Response {
    result.unwrap_or_else(|error| error_page(session.as_deref(), &error))
}

async fn home_page(session: Session, state: AppState) -> Response {
    let who = reader(&session);
    let result = blocking(&state, move |state| {
        let registry = state.registry();
        let who = who.as_ref();
        let end = today();
        let top = downloads::top(
            &registry.store,
            end - Duration::days(29),
            end,
            HOME_LIST as usize,
            who,
        )?;
        let names: Vec<String> = top.iter().map(|(name, _)| name.clone()).collect();
        let listed = pages::listed_by_name(&registry.store, &names, who)?;
        let popular = listed
            .into_iter()
            .filter_map(|p| {
                let count = top.iter().find(|(n, _)| *n == p.name)?.1;
                Some((p, count))
            })
            .collect();
        Ok(home::Home {
            total: registry.info(who)?.doc_count,
            recent: pages::recent(&registry.store, HOME_LIST, who)?,
            popular,
        })
    })
    .await
    .map(|data| html(StatusCode::OK, home::page(session.as_deref(), &data)));
    answer(&session, result)
}

fn page_number(raw: Option<&String>) -> Result<u32, Error> {
    let Some(raw) = raw.map(|r| r.trim()).filter(|r| !r.is_empty()) else {
        return Ok(1);
    };
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=search::MAX_PAGE).contains(n))
        .ok_or_else(|| {
            Error::bad_request(format!(
                "page must be a whole number from 1 to {}",
                search::MAX_PAGE
            ))
        })
}

async fn search_page(
    query: HashMap<String, String>,
    session: Session,
    state: AppState,
) -> Response {
    let who = reader(&session);
    let result = async {
        let page = page_number(query.get("page"))?;
        let text = query.get("q").cloned().unwrap_or_default();
        let from = ((page - 1) * search::PER_PAGE).to_string();
        let per_page = search::PER_PAGE.to_string();
        let request = SearchRequest::parse(Some(&text), Some(&per_page), Some(&from))?;
        let found = blocking(&state, move |state| {
            core_search::search(&state.registry().store, &request, who.as_ref())
        })
        .await?;
        Ok(search::Results {
            query: text.trim().to_string(),
            page,
            total: found.total,
            objects: found.objects,
        })
    }
    .await
    .map(|results| html(StatusCode::OK, search::page(session.as_deref(), &results)));
    answer(&session, result)
}

async fn package_page(
    tail: Tail,
    query: HashMap<String, String>,
    session: Session,
    state: AppState,
) -> Response {
    let who = reader(&session);
    let result = async {
        let (name, rest) = parse_package_subpath(tail.as_str())?;
        let version = match rest.as_slice() {
            [] => None,
            [v, version] if v == "v" && !version.is_empty() => Some(version.clone()),
            _ => return Err(Error::not_found("no such page")),
        };
        let days = query
            .get("days")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|d| package::PERIODS.contains(d))
            .unwrap_or(package::PERIODS[0]);
        let all_versions = query.get("versions").is_some_and(|v| v == "all");
        let pinned = version.is_some();
        let (overview, report) = blocking(&state, move |state| {
            let store = &state.registry().store;
            let overview = pages::overview(store, &name, version.as_deref(), who.as_ref())?;
            let end = today();
            let start = end - Duration::days(i64::from(days) - 1);
            let report = downloads::range(store, &name, start, end, who.as_ref())?;
            Ok((overview, report))
        })
        .await?;
        Ok(html(
            StatusCode::OK,
            package::page(
                session.as_deref(),
                &package::PackagePage {
                    overview: &overview,
                    pinned,
                    days,
                    all_versions,
                    downloads: &report,
                },
            ),
        ))
    }
    .await;
    answer(&session, result)
}

async fn user_page(raw: String, session: Session, state: AppState) -> Response {
    let who = reader(&session);
    let result = async {
        let name = percent_decode(&raw)?;
        validate_username(&name)?;
        let shown = name.clone();
        let packages = blocking(&state, move |state| {
            let store = &state.registry().store;
            if find_user(store, &name)?.is_none() {
                return Err(Error::not_found(format!("no user named {name}")));
            }
            let mut by_user = core_search::packages_by_users(store, &name, who.as_ref())?;
            let names = by_user.remove(&name).unwrap_or_default();
            pages::listed_by_name(store, &names, who.as_ref())
        })
        .await?;
        Ok(html(
            StatusCode::OK,
            user::page(session.as_deref(), &shown, &packages),
        ))
    }
    .await;
    answer(&session, result)
}

/// The tokens page with `notice`, for the signed-in `session`.
async fn render_tokens(
    session: Arc<WebSession>,
    state: &AppState,
    status: StatusCode,
    notice: token_page::Notice<'_>,
) -> Response {
    let user_id = session.user.id;
    match blocking(state, move |state| {
        tokens::list_tokens(&state.registry().store, user_id, 0, TOKENS_LISTED)
    })
    .await
    {
        Ok(listing) => html(
            status,
            token_page::page(&session, &listing.tokens, listing.total, notice),
        ),
        Err(error) => error_page(Some(&session), &error),
    }
}

async fn tokens_page(session: Session, state: AppState) -> Response {
    let Some(session) = session else {
        return redirect(LOGIN_FOR_TOKENS);
    };
    render_tokens(session, &state, StatusCode::OK, token_page::Notice::None).await
}

fn csrf_refused(session: &WebSession) -> Response {
    error_page(
        Some(session),
        &Error::forbidden(
            "this form has expired or did not come from this site: reload the page and try again",
        ),
    )
}

/// The create form's fields as `registry token create` takes them.
fn token_options(form: &HashMap<String, String>) -> Result<TokenOptions, Error> {
    let field = |key: &str| form.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let name = field("name").map(String::from);
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(Error::bad_request(
            "a token's name is at most 100 characters",
        ));
    }
    let networks: Vec<String> = field("cidr")
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    // The same rules and spelling as npm's token API.
    let cidr_whitelist = canonical_cidr_whitelist(&networks)?;
    let expires_at = field("expires_days")
        .map(|raw| expiry_after_days(raw.parse().ok(), raw))
        .transpose()?;
    Ok(TokenOptions {
        name,
        readonly: form.get("readonly").is_some(),
        cidr_whitelist,
        expires_at,
    })
}

async fn create_token(
    session: Session,
    form: HashMap<String, String>,
    state: AppState,
) -> Response {
    let Some(session) = session else {
        return redirect(LOGIN_FOR_TOKENS);
    };
    if require_csrf(&session, &form).is_err() {
        return csrf_refused(&session);
    }
    let options = match token_options(&form) {
        Ok(options) => options,
        Err(error) => {
            let message = error.public_message();
            return render_tokens(
                session,
                &state,
                StatusCode::BAD_REQUEST,
                token_page::Notice::Refused(&message),
            )
            .await;
        }
    };
    let user_id = session.user.id;
    match blocking(&state, move |state| {
        tokens::create_token(&state.registry().store, user_id, &options)
    })
    .await
    {
        // The answer itself shows the secret (never stored, `no-store`): a redirect would
        // need to keep it somewhere to show it after.
        Ok(issued) => {
            render_tokens(
                session,
                &state,
                StatusCode::CREATED,
                token_page::Notice::Created(&issued.secret),
            )
            .await
        }
        Err(error) => error_page(Some(&session), &error),
    }
}

async fn revoke_token(
    key: String,
    session: Session,
    form: HashMap<String, String>,
    state: AppState,
) -> Response {
    let Some(session) = session else {
        return redirect(LOGIN_FOR_TOKENS);
    };
    if require_csrf(&session, &form).is_err() {
        return csrf_refused(&session);
    }
    let identity = Identity {
        user: session.user.clone(),
        token: None,
    };
    let result = blocking(&state, move |state| {
        let writer = require_writer(Some(&identity))?;
        tokens::revoke_token_by_key_or_secret(&state.registry().store, &writer, &key)
    })
    .await;
    match result {
        Ok(()) => redirect("/-/web/tokens"),
        Err(error) => error_page(Some(&session), &error),
    }
}
