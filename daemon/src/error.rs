//! Rejections become `{"error", "reason"}` answers here, and only here. npm prints only the
//! `error` field, so it carries the human sentence; `reason` repeats it for other clients.

use std::convert::Infallible;

use http::{HeaderValue, StatusCode};
use registry_core::Error;
use warp::reject::{Reject, Rejection};
use warp::reply::Response;

use crate::reply::json_response;

/// How a 401 asks for credentials. npm reads the header to choose its advice: `Bearer` makes
/// it suggest `npm login`, `Basic` a wrong password.
#[derive(Debug, Clone, Copy)]
pub enum Challenge {
    Bearer,
    Basic,
}

#[derive(Debug)]
pub struct ApiError {
    pub error: Error,
    pub challenge: Challenge,
}

impl Reject for ApiError {}

pub fn reject(error: Error) -> Rejection {
    warp::reject::custom(ApiError {
        error,
        challenge: Challenge::Bearer,
    })
}

pub fn reject_with_challenge(error: Error, challenge: Challenge) -> Rejection {
    warp::reject::custom(ApiError { error, challenge })
}

/// For operations that check a password (login, token creation, password change): their 401
/// means a wrong password, so it asks for one (Basic) rather than for a login (Bearer), and npm
/// says "Incorrect or missing password".
pub fn as_password_rejection(rejection: Rejection) -> Rejection {
    match rejection.find::<ApiError>() {
        Some(api) if api.error.status() == 401 => reject_with_challenge(
            Error::unauthorized(api.error.public_message()),
            Challenge::Basic,
        ),
        _ => rejection,
    }
}

pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    Ok(rejection_response(&rejection))
}

pub fn rejection_response(rejection: &Rejection) -> Response {
    if let Some(api) = rejection.find::<ApiError>() {
        return api_error_response(api);
    }
    let (status, message) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "not found".to_string())
    } else if let Some(err) = rejection.find::<warp::reject::PayloadTooLarge>() {
        (StatusCode::PAYLOAD_TOO_LARGE, err.to_string())
    } else if let Some(err) = rejection.find::<warp::reject::MethodNotAllowed>() {
        (StatusCode::METHOD_NOT_ALLOWED, err.to_string())
    } else if let Some(err) = rejection.find::<warp::reject::InvalidHeader>() {
        (StatusCode::BAD_REQUEST, err.to_string())
    } else if let Some(err) = rejection.find::<warp::reject::MissingHeader>() {
        (StatusCode::BAD_REQUEST, err.to_string())
    } else if let Some(err) = rejection.find::<warp::reject::InvalidQuery>() {
        (StatusCode::BAD_REQUEST, err.to_string())
    } else if let Some(err) = rejection.find::<warp::reject::LengthRequired>() {
        (StatusCode::LENGTH_REQUIRED, err.to_string())
    } else if let Some(err) = rejection.find::<warp::reject::UnsupportedMediaType>() {
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, err.to_string())
    } else {
        tracing::error!("unhandled rejection: {rejection:?}");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error".to_string(),
        )
    };
    error_response(status, &message)
}

fn api_error_response(api: &ApiError) -> Response {
    let status =
        StatusCode::from_u16(api.error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!("{}", api.error);
    }
    let mut response = error_response(status, &api.error.public_message());
    add_retry_after(&api.error, &mut response);
    if status == StatusCode::UNAUTHORIZED {
        let challenge = match (&api.error, api.challenge) {
            // npm splits the header on commas: an `ipaddress` part makes it say EAUTHIP.
            (Error::AddressNotAllowed(_), _) => "Bearer realm=\"registry\", ipaddress",
            (_, Challenge::Bearer) => "Bearer realm=\"registry\"",
            (_, Challenge::Basic) => "Basic realm=\"registry\"",
        };
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// A refusal to try again later says when (a browser's page and npm's JSON alike).
pub fn add_retry_after(error: &Error, response: &mut Response) {
    if let Error::TooManyAttempts {
        retry_after_secs, ..
    } = error
    {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(*retry_after_secs),
        );
    }
}

/// The answer for an error met outside the routes (the accept loop's header limit), mapped
/// like every other.
pub fn error_reply(error: Error) -> Response {
    api_error_response(&ApiError {
        error,
        challenge: Challenge::Bearer,
    })
}

pub fn error_response(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &serde_json::json!({ "error": message, "reason": message }),
    )
}
