//! `registry token …`

use std::io::IsTerminal;

use anyhow::anyhow;
use registry_core::clock::iso;
use registry_core::tokens::{create_token, TokenOptions};
use registry_core::users::find_user;
use registry_core::Error;
use serde_json::json;

use crate::cli::{GlobalArgs, TokenCommand, TokenCreateArgs};
use crate::exit::UsageError;

pub fn run(global: &GlobalArgs, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => create(global, args),
    }
}

fn create(global: &GlobalArgs, args: TokenCreateArgs) -> anyhow::Result<()> {
    for cidr in &args.cidr {
        validate_cidr(cidr)?;
    }
    let expires_at = args
        .expires
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .map(|ttl| iso(time::OffsetDateTime::now_utc() + ttl));
    let registry = super::open_local(global)?;
    let user = find_user(&registry.store, &args.user)?
        .ok_or_else(|| Error::not_found(format!("no user named {:?}", args.user)))?;
    let issued = create_token(
        &registry.store,
        user.id,
        &TokenOptions {
            name: args.name,
            readonly: args.readonly,
            cidr_whitelist: args.cidr,
            expires_at,
        },
    )?;
    if global.json {
        let record = &issued.record;
        println!(
            "{}",
            json!({
                "token": issued.secret, "key": record.key, "user": user.name,
                "readonly": record.readonly, "cidr_whitelist": record.cidr_whitelist,
                "created": record.created_at, "expires": record.expires_at,
            })
        );
        return Ok(());
    }
    println!("{}", issued.secret);
    if std::io::stdout().is_terminal() {
        eprintln!(
            "This token is shown only once: store it now (e.g. in .npmrc as //HOST/:_authToken=…)."
        );
    }
    Ok(())
}

/// `30d`, `12h`, `45m` → a duration.
fn parse_duration(text: &str) -> anyhow::Result<time::Duration> {
    let bad = || {
        UsageError(format!(
            "--expires {text:?}: write a number with d, h or m, like 30d"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number.parse().map_err(|_| bad())?;
    if amount <= 0 {
        return Err(bad().into());
    }
    Ok(match unit {
        "d" => time::Duration::days(amount),
        "h" => time::Duration::hours(amount),
        "m" => time::Duration::minutes(amount),
        _ => return Err(bad().into()),
    })
}

/// An IPv4 network as npm writes them: `10.0.0.0/8`.
fn validate_cidr(cidr: &str) -> anyhow::Result<()> {
    let (address, bits) = cidr.split_once('/').ok_or_else(|| {
        anyhow!(UsageError(format!(
            "--cidr {cidr:?} is not of the form 10.0.0.0/8"
        )))
    })?;
    let valid =
        address.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32);
    if !valid {
        return Err(UsageError(format!("--cidr {cidr:?} is not of the form 10.0.0.0/8")).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_cidrs() {
        assert_eq!(parse_duration("30d").ok(), Some(time::Duration::days(30)));
        assert_eq!(parse_duration("12h").ok(), Some(time::Duration::hours(12)));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(validate_cidr("10.0.0.0/8").is_ok());
        assert!(validate_cidr("10.0.0.0/33").is_err());
        assert!(validate_cidr("10.0.0.0").is_err());
        assert!(validate_cidr("::1/128").is_err());
    }
}
