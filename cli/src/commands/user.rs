//! `registry user …`

use std::io::{BufRead, IsTerminal};

use registry_core::users::{create_user, NewUser};
use serde_json::json;

use crate::cli::{GlobalArgs, UserAddArgs, UserCommand};
use crate::exit::UsageError;

pub fn run(global: &GlobalArgs, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add(args) => add(global, args),
    }
}

fn add(global: &GlobalArgs, args: UserAddArgs) -> anyhow::Result<()> {
    let password = read_new_password(args.password_stdin)?;
    let registry = super::open_local(global)?;
    let user = create_user(
        &registry.store,
        &NewUser {
            name: &args.name,
            email: &args.email,
            password: &password,
            admin: args.admin,
        },
    )?;
    if global.json {
        println!(
            "{}",
            json!({ "name": user.name, "email": user.email, "admin": user.is_admin,
                    "created": user.created_at })
        );
    } else {
        let role = if user.is_admin { "admin" } else { "user" };
        println!("created {role} {}", user.name);
    }
    Ok(())
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
