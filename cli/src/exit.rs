//! Exit codes (documented in the man page): 0 ok, 1 failed, 2 usage, 3 not found,
//! 4 permission denied. Errors are one line on stderr, with a hint where one helps.

use std::process::ExitCode;

use registry_core::Error;

pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const PERMISSION_DENIED: u8 = 4;

/// A usage problem found after parsing (e.g. no terminal to prompt on).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn report(err: &anyhow::Error) -> ExitCode {
    // `registry … | head`: the reader went away; that is not a failure.
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {err:#}");
    ExitCode::from(code_for(err))
}

fn code_for(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<UsageError>().is_some() {
        return USAGE;
    }
    match err.downcast_ref::<Error>() {
        Some(Error::BadRequest(_)) => USAGE,
        Some(Error::NotFound(_)) => NOT_FOUND,
        Some(Error::Unauthorized(_) | Error::Forbidden(_)) => PERMISSION_DENIED,
        _ => FAILED,
    }
}
