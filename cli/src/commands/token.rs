//! `registry token …`

use std::io::IsTerminal;

use anyhow::anyhow;
use registry_core::clock::iso;

use crate::backend::{Backend, TokenRequest};
use crate::cli::{TokenCommand, TokenCreateArgs};
use crate::exit::UsageError;
use crate::output::{opt, Out};

pub fn run(backend: &dyn Backend, out: &Out, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => create(backend, out, args),
        TokenCommand::List(args) => list(backend, out, args.user.as_deref()),
        TokenCommand::Revoke(args) => {
            backend.token_revoke(&args.key)?;
            out.done(format!("revoked token {}", args.key))
        }
    }
}

fn create(backend: &dyn Backend, out: &Out, args: TokenCreateArgs) -> anyhow::Result<()> {
    for cidr in &args.cidr {
        validate_cidr(cidr)?;
    }
    let expires_at = args
        .expires
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .map(|ttl| iso(time::OffsetDateTime::now_utc() + ttl));
    let issued = backend.token_create(&TokenRequest {
        user: args.user,
        readonly: args.readonly,
        cidr: args.cidr,
        expires_at,
        name: args.name,
    })?;
    if out.json {
        return out.json(&issued);
    }
    out.line(&issued.token)?;
    if std::io::stdout().is_terminal() && !out.quiet {
        eprintln!(
            "This token is shown only once: store it now (e.g. in .npmrc as //HOST/:_authToken=…)."
        );
    }
    Ok(())
}

fn list(backend: &dyn Backend, out: &Out, user: Option<&str>) -> anyhow::Result<()> {
    let tokens = backend.token_list(user)?;
    if out.json {
        return out.json(&tokens);
    }
    let rows = tokens
        .iter()
        .map(|t| {
            vec![
                t.key.clone(),
                t.user.clone(),
                opt(&t.name),
                t.kind.clone(),
                if t.cidr_whitelist.is_empty() {
                    "-".into()
                } else {
                    t.cidr_whitelist.join(",")
                },
                t.created.clone(),
                opt(&t.last_used),
                opt(&t.expires),
            ]
        })
        .collect();
    out.table(
        &[
            "KEY",
            "USER",
            "NAME",
            "KIND",
            "CIDR",
            "CREATED",
            "LAST USED",
            "EXPIRES",
        ],
        rows,
    )
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
