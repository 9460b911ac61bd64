//! Signing in and out, and the whole `npm login` / `npm adduser` web flow, in a real headless
//! Chromium (Debian's `chromium` + `chromium-driver`, which `.ci/run` installs): the real npm
//! prints the login URL, the browser signs in (or up) and approves, npm saves the token, and
//! `npm whoami` answers. Screenshots of the pages at 375 and 1440 px go to
//! `target/screenshots/`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::webdriver::Browser;
use common::*;
use registry_core::config::Registration;
use serde_json::Value;

const PHONE: (u32, u32) = (375, 812);
const DESKTOP: (u32, u32) = (1440, 900);

/// Screenshots of the current page at both widths, named `NAME-375` and `NAME-1440`.
fn screenshots(browser: &Browser, name: &str) {
    for (width, height) in [PHONE, DESKTOP] {
        browser.set_window_size(width, height);
        let path = browser.screenshot(&format!("{name}-{width}"));
        eprintln!("screenshot: {}", path.display());
    }
}

fn sign_in_on_form(browser: &Browser, name: &str, password: &str) {
    browser.find("#login-name").type_text(name);
    browser.find("#login-password").type_text(password);
    browser.find("form.stacked button[type=submit]").click();
}

/// Opens a web login over HTTP (as npm does) and returns its `loginUrl`.
fn open_cli_login(reg: &TestRegistry) -> String {
    let body: Value = client()
        .post(reg.url("/-/v1/login"))
        .json(&serde_json::json!({}))
        .send()
        .expect("open login")
        .json()
        .expect("json");
    body["loginUrl"].as_str().expect("loginUrl").to_string()
}

#[test]
fn sign_in_and_sign_out_in_the_browser() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let browser = Browser::start(DESKTOP.0, DESKTOP.1);
    let login_url = open_cli_login(&reg);

    // A page that needs a session sends the browser to the sign-in form first.
    browser.goto(&login_url);
    browser.wait_for_url(|u| u.contains("/-/web/login?next="));
    assert!(browser
        .find("label[for=login-name]")
        .text()
        .contains("Name"));

    // A wrong password: the form again, with the error.
    sign_in_on_form(&browser, "alice", "wrong");
    assert_eq!(browser.find(".error").text(), "Incorrect name or password.");
    screenshots(&browser, "login-error");

    browser.find("#login-name").clear();
    sign_in_on_form(&browser, "alice", "alice-password");
    browser.wait_for_url(|u| u == login_url);
    assert_eq!(browser.find("#cli-user").text(), "alice");
    assert!(browser.find("nav").text().contains("alice"));

    // Sign out: back home, and the page needs a sign-in again.
    browser.find("nav form.inline button").click();
    browser.wait_for_url(|u| u == reg.url("/"));
    browser.goto(&login_url);
    browser.wait_for_url(|u| u.contains("/-/web/login?next="));
}

/// Reads npm's stdout lines on a thread (npm keeps running while the browser acts).
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The login URL npm prints ("Login at:" / "Create your account at:", then the URL).
fn printed_url(lines: &mpsc::Receiver<String>, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let found = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http") && w.contains("/-/web/cli-login/"))
                    .map(str::to_string);
                seen.push(line);
                if let Some(url) = found {
                    return url;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!("npm printed no login URL:\n{}", seen.join("\n"));
}

/// Waits for npm to finish; returns whether it succeeded, with its stderr.
fn finish(mut child: Child, seen: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("npm status") {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            assert!(
                status.success(),
                "npm failed ({status}):\n{}\n{stderr}",
                seen.join("\n")
            );
            return stderr;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("npm did not finish:\n{}", seen.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn saved_token(npm: &Npm) -> String {
    let rc = std::fs::read_to_string(npm.userconfig()).expect("read .npmrc");
    rc.lines()
        .find_map(|l| {
            l.split_once(":_authToken=")
                .map(|(_, t)| t.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no token saved in .npmrc:\n{rc}"))
}

#[test]
fn npm_login_through_the_browser() {
    let reg = TestRegistry::start();
    reg.add_user("alice", "alice-password");
    let npm = Npm::new(&reg);
    let cwd = npm.dir("work");
    let mut child = npm.spawn(&cwd, &["login"]);
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    let url = printed_url(&lines, &mut seen);
    assert!(url.starts_with(&reg.base), "{url}");

    let browser = Browser::start(DESKTOP.0, DESKTOP.1);
    browser.goto(&url);
    browser.wait_for_url(|u| u.contains("/-/web/login?next="));
    screenshots(&browser, "login");
    sign_in_on_form(&browser, "alice", "alice-password");
    browser.wait_for_url(|u| u == url);
    assert_eq!(browser.find("#cli-user").text(), "alice");
    screenshots(&browser, "cli-approve");
    browser.find("#approve").click();
    assert_eq!(browser.find("#approved").text(), "npm is logged in");
    screenshots(&browser, "cli-approved");

    while let Ok(line) = lines.recv_timeout(Duration::from_millis(50)) {
        seen.push(line);
    }
    finish(child, &seen);
    let token = saved_token(&npm);
    assert!(!token.is_empty());
    assert_eq!(npm.ok(&cwd, &["whoami"]).trim(), "alice");

    // The link is spent: opening it again says so.
    browser.goto(&url);
    assert!(
        browser.text().contains("expired or was already used"),
        "{}",
        browser.text()
    );
}

#[test]
fn npm_adduser_through_the_browser_when_registration_is_open() {
    let reg = TestRegistry::start_with(|c| c.registration = Registration::Open);
    let npm = Npm::new(&reg);
    let cwd = npm.dir("work");
    let mut child = npm.spawn(&cwd, &["adduser"]);
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    let url = printed_url(&lines, &mut seen);
    assert!(
        seen.iter().any(|l| l.contains("Create your account at")),
        "{seen:?}"
    );

    let browser = Browser::start(DESKTOP.0, DESKTOP.1);
    browser.goto(&url);
    browser.wait_for_url(|u| u.contains("/-/web/signup?next="));
    screenshots(&browser, "signup");
    browser.find("#signup-name").type_text("newbie");
    browser
        .find("#signup-email")
        .type_text("newbie@example.com");
    browser
        .find("#signup-password")
        .type_text("newbie-password-1");
    browser.find("form.stacked button[type=submit]").click();
    browser.wait_for_url(|u| u == url);
    assert_eq!(browser.find("#cli-user").text(), "newbie");
    browser.find("#approve").click();
    assert_eq!(browser.find("#approved").text(), "npm is logged in");

    while let Ok(line) = lines.recv_timeout(Duration::from_millis(50)) {
        seen.push(line);
    }
    finish(child, &seen);
    saved_token(&npm);
    assert_eq!(npm.ok(&cwd, &["whoami"]).trim(), "newbie");
}
