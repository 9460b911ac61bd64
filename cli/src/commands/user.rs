//! `registry user add|list|show|passwd|rm|admin`

use std::io::{BufRead, IsTerminal};

use crate::backend::{Backend, UserInfo};
use crate::cli::{UserAddArgs, UserAdminArgs, UserCommand, UserPasswdArgs};
use crate::exit::UsageError;
use crate::output::{opt, Out};

pub fn run(backend: &dyn Backend, out: &Out, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add(args) => add(backend, out, args),
        UserCommand::List => list(backend, out),
        UserCommand::Show(args) => show(backend, out, &args.name),
        UserCommand::Passwd(args) => passwd(backend, out, args),
        UserCommand::Rm(args) => {
            backend.user_rm(&args.name)?;
            out.done(format!("deleted user {} and their tokens", args.name))
        }
        UserCommand::Admin(args) => admin(backend, out, args),
    }
}

fn role(user: &UserInfo) -> &'static str {
    match user.admin {
        Some(true) => "admin",
        Some(false) => "user",
        None => "-",
    }
}

fn add(backend: &dyn Backend, out: &Out, args: UserAddArgs) -> anyhow::Result<()> {
    let password = read_new_password(args.password_stdin)?;
    let user = backend.user_add(&args.name, &args.email, &password, args.admin)?;
    if out.json {
        return out.json(&user);
    }
    let role = if args.admin { "admin" } else { "user" };
    out.done(format!("created {role} {}", user.name))
}

fn list(backend: &dyn Backend, out: &Out) -> anyhow::Result<()> {
    let users = backend.user_list()?;
    if out.json {
        return out.json(&users);
    }
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.name.clone(),
                u.email.clone(),
                role(u).into(),
                opt(&u.created),
            ]
        })
        .collect();
    out.table(&["NAME", "EMAIL", "ROLE", "CREATED"], rows)
}

fn show(backend: &dyn Backend, out: &Out, name: &str) -> anyhow::Result<()> {
    let user = backend.user_show(name)?;
    if out.json {
        return out.json(&user);
    }
    out.table(
        &["NAME", "EMAIL", "ROLE", "CREATED"],
        vec![vec![
            user.name.clone(),
            user.email.clone(),
            role(&user).into(),
            opt(&user.created),
        ]],
    )
}

fn passwd(backend: &dyn Backend, out: &Out, args: UserPasswdArgs) -> anyhow::Result<()> {
    let password = read_new_password(args.password_stdin)?;
    backend.user_passwd(&args.name, &password)?;
    out.done(format!("changed the password of {}", args.name))
}

fn admin(backend: &dyn Backend, out: &Out, args: UserAdminArgs) -> anyhow::Result<()> {
    let user = backend.user_admin(&args.name, !args.revoke)?;
    if out.json {
        return out.json(&user);
    }
    if args.revoke {
        out.done(format!("{} is no longer an administrator", user.name))
    } else {
        out.done(format!("{} is now an administrator", user.name))
    }
}

/// From the first line of stdin with `--password-stdin`; otherwise prompted (twice) on a
/// terminal. Never from an argument, where it would end up in shell history and `ps`.
fn read_new_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(UsageError("--password-stdin read an empty password".into()).into());
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(
            "no terminal to ask for the password on: pass --password-stdin and write the \
             password to standard input"
                .into(),
        )
        .into());
    }
    Ok(dialoguer::Password::new()
        .with_prompt("Password")
        .with_confirmation("Repeat password", "the passwords do not match")
        .interact()?)
}
