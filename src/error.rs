//! The one error type of the core. Every variant knows its HTTP status, so the daemon maps errors
//! to responses in one place and the CLI maps them to exit codes in one place.
//!
//! Which to use: `BadRequest` for input that can never succeed as sent (malformed JSON, invalid
//! names, failed integrity checks); `Unauthorized` when credentials are missing or wrong;
//! `Forbidden` when the caller is known but may not do this; `Conflict` for races and duplicates
//! that the caller cannot fix by retrying the same request; `NotFound` for absent resources.
//! Storage and I/O failures are internal: they become 500 with no detail leaked to the client —
//! except `MissingBlob`, a 500 that names the tarball whose file is gone (no path), so that the
//! client knows it is not its fault and the administrator what to restore (`registry doctor`).

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// 401 for a token whose CIDR allow-list does not include the caller's address: npm
    /// tells that apart (EAUTHIP) from a bad token by the `ipaddress` challenge.
    #[error("{0}")]
    AddressNotAllowed(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 431: the request line and headers are longer than `max_header_bytes`.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// 429: too many failed logins, or too many password requests from one address; try
    /// again after this many seconds.
    #[error("{message}")]
    TooManyAttempts {
        message: String,
        retry_after_secs: u64,
    },
    /// 451 for a package an administrator blocked; the message carries the reason given.
    #[error("{0}")]
    UnavailableForLegalReasons(String),
    /// 507: the disk (or the database) is full. Nothing was half-written; retry when there
    /// is room.
    #[error("{0}")]
    InsufficientStorage(String),
    /// 503: the data directory cannot be written (read-only file system, database locked
    /// read-only; reads still work), or the S3 blob store cannot be reached or refused a
    /// request. A retry may succeed once the fault is cured.
    #[error("{0}")]
    StorageUnavailable(String),
    /// 502: an upstream registry failed (refused the connection, answered 5xx or garbage,
    /// sent a tarball that does not match its checksum) and nothing cached can stand in.
    #[error("{0}")]
    BadGateway(String),
    /// 504: an upstream registry did not answer within its timeout.
    #[error("{0}")]
    GatewayTimeout(String),
    /// 503: an answer depends on an upstream that cannot be asked right now (the
    /// dependency-confusion check of a new name).
    #[error("{0}")]
    UpstreamUnavailable(String),
    /// 500: a tarball the database lists has no file in the blob store. Not temporary: an
    /// administrator restores it (`registry doctor` lists every such version).
    #[error("{0}")]
    MissingBlob(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("i/o error: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Error::InsufficientStorage(format!(
                    "the registry's disk is full ({err}); nothing was stored — retry once an \
                     administrator has made room"
                ))
            }
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                Error::StorageUnavailable(format!(
                    "the registry cannot write to its data directory ({err}); nothing was \
                     stored"
                ))
            }
            _ => Error::Io(err),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(reason: impl fmt::Display) -> Self {
        Error::BadRequest(reason.to_string())
    }
    pub fn unauthorized(reason: impl fmt::Display) -> Self {
        Error::Unauthorized(reason.to_string())
    }
    pub fn forbidden(reason: impl fmt::Display) -> Self {
        Error::Forbidden(reason.to_string())
    }
    pub fn not_found(reason: impl fmt::Display) -> Self {
        Error::NotFound(reason.to_string())
    }
    pub fn conflict(reason: impl fmt::Display) -> Self {
        Error::Conflict(reason.to_string())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) | Error::AddressNotAllowed(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::PayloadTooLarge(_) => 413,
            Error::HeadersTooLarge(_) => 431,
            Error::TooManyAttempts { .. } => 429,
            Error::UnavailableForLegalReasons(_) => 451,
            Error::StorageUnavailable(_) | Error::UpstreamUnavailable(_) => 503,
            Error::BadGateway(_) => 502,
            Error::GatewayTimeout(_) => 504,
            Error::InsufficientStorage(_) => 507,
            Error::MissingBlob(_) | Error::Storage(_) | Error::Io(_) => 500,
        }
    }

    /// The sentence shown to the client. Internal failures are not described to the client
    /// (they are logged by the caller instead).
    pub fn public_message(&self) -> String {
        match self {
            Error::Storage(_) | Error::Io(_) => {
                "internal server error; the registry's log has the details".to_string()
            }
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error as IoError, ErrorKind};

    #[test]
    fn full_and_read_only_disks_are_told_apart_from_other_failures() {
        let full = Error::from(IoError::from(ErrorKind::StorageFull));
        assert_eq!(full.status(), 507);
        assert!(full.public_message().contains("disk is full"));
        let read_only = Error::from(IoError::from(ErrorKind::ReadOnlyFilesystem));
        assert_eq!(read_only.status(), 503);
        let missing = Error::MissingBlob("the tarball of p@1.0.0 is missing".into());
        assert_eq!(missing.status(), 500);
        assert!(missing.public_message().contains("p@1.0.0"), "named");
        let other = Error::from(IoError::other("boom"));
        assert_eq!(other.status(), 500);
        assert!(
            !other.public_message().contains("boom"),
            "internal details stay in the log"
        );
    }
}
