//! The web UI's forms over HTTP, as a browser uses them: its CSRF cookies and hidden fields,
//! sign-in, and npm's web login (open, approve).

use reqwest::blocking::{Client, Response};
use serde_json::Value;

use super::{client, TestRegistry};

/// reqwest's `form` needs a feature this build does not enable: the urlencoded body by hand.
pub trait FormFields {
    fn form_fields(self, fields: &[(&str, &str)]) -> Self;
}

impl FormFields for reqwest::blocking::RequestBuilder {
    fn form_fields(self, fields: &[(&str, &str)]) -> Self {
        let encode = |text: &str| {
            text.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// A client that shows redirects instead of following them.
pub fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("client")
}

pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// `name=value` of the cookie `name` that `response` sets.
pub fn cookie(response: &Response, name: &str) -> Option<String> {
    set_cookies(response).into_iter().find_map(|c| {
        let pair = c.split(';').next()?.trim().to_string();
        pair.starts_with(&format!("{name}=")).then_some(pair)
    })
}

pub fn hidden(page: &str, field: &str) -> String {
    let marker = format!("name=\"{field}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {field} in:\n{page}"))
        + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The login form's CSRF cookie (`name=value`) and its hidden field.
pub fn login_form(reg: &TestRegistry, path: &str) -> (String, String) {
    let response = browser().get(reg.url(path)).send().expect("login page");
    assert_eq!(response.status(), 200);
    let csrf_cookie = cookie(&response, "registry_login_csrf").expect("a login CSRF cookie");
    let page = response.text().expect("page");
    assert!(page.contains("<label for=\"login-name\">"), "{page}");
    (csrf_cookie, hidden(&page, "login_csrf"))
}

pub fn post_login(reg: &TestRegistry, name: &str, password: &str, next: &str) -> Response {
    let (csrf_cookie, token) = login_form(reg, "/-/web/login");
    browser()
        .post(reg.url("/-/web/login"))
        .header("cookie", csrf_cookie)
        .form_fields(&[
            ("login_csrf", token.as_str()),
            ("name", name),
            ("password", password),
            ("next", next),
        ])
        .send()
        .expect("sign in")
}

/// Signs in and returns the session cookie (`registry_session=…`).
pub fn sign_in(reg: &TestRegistry, name: &str, password: &str) -> String {
    let response = post_login(reg, name, password, "/");
    assert_eq!(response.status(), 303, "{:?}", response.text());
    cookie(&response, "registry_session").expect("a session cookie")
}

pub fn open_login(reg: &TestRegistry, body: Value) -> (String, String) {
    let response = client()
        .post(reg.url("/-/v1/login"))
        .json(&body)
        .send()
        .expect("open login");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().expect("json");
    let login = body["loginUrl"].as_str().expect("loginUrl").to_string();
    let done = body["doneUrl"].as_str().expect("doneUrl").to_string();
    (login, done)
}

/// Approves a web login in the "browser" of `session`.
pub fn approve(login_url: &str, session: &str) -> Response {
    let page = browser()
        .get(login_url)
        .header("cookie", session)
        .send()
        .expect("approval page");
    assert_eq!(page.status(), 200);
    let page = page.text().expect("page");
    assert!(page.contains("Approve npm login"), "{page}");
    let csrf = hidden(&page, "csrf");
    browser()
        .post(login_url)
        .header("cookie", session)
        .form_fields(&[("csrf", csrf.as_str())])
        .send()
        .expect("approve")
}
