//! `registry dist-tag ls|add|rm`

use crate::backend::Backend;
use crate::cli::DistTagCommand;
use crate::exit::UsageError;
use crate::output::Out;

pub fn run(backend: &dyn Backend, out: &Out, command: DistTagCommand) -> anyhow::Result<()> {
    match command {
        DistTagCommand::Ls(args) => {
            let tags = backend.dist_tags(&args.package)?;
            if out.json {
                return out.json(&tags);
            }
            for (tag, version) in tags {
                out.line(format!("{tag}: {version}"))?;
            }
            Ok(())
        }
        DistTagCommand::Add(args) => {
            let (name, version) = split_spec(&args.spec)?;
            let version = version
                .ok_or_else(|| UsageError(format!("{:?}: write NAME@VERSION TAG", args.spec)))?;
            backend.dist_tag_add(name, &args.tag, version)?;
            out.done(format!("+{}: {name}@{version}", args.tag))
        }
        DistTagCommand::Rm(args) => {
            backend.dist_tag_rm(&args.package, &args.tag)?;
            out.done(format!("-{}: {}", args.tag, args.package))
        }
    }
}

/// `name@x`, `@scope/name@x` → (name, Some(x)); `name`, `@scope/name` → (name, None).
pub fn split_spec(spec: &str) -> anyhow::Result<(&str, Option<&str>)> {
    let at = spec
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '@')
        .map(|(i, _)| i);
    match at {
        Some(i) if i + 1 < spec.len() => Ok((&spec[..i], Some(&spec[i + 1..]))),
        Some(_) => Err(UsageError(format!("{spec:?} ends with @: write NAME@VERSION")).into()),
        None => Ok((spec, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_split_at_the_version_not_the_scope() -> anyhow::Result<()> {
        assert_eq!(split_spec("foo@1.0.0")?, ("foo", Some("1.0.0")));
        assert_eq!(split_spec("@s/foo@^1")?, ("@s/foo", Some("^1")));
        assert_eq!(split_spec("@s/foo")?, ("@s/foo", None));
        assert!(split_spec("foo@").is_err());
        Ok(())
    }
}
