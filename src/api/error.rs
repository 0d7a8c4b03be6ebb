//! Every failure the API answers with: a status, a stable code and a message that names the
//! parameter at fault and never carries driver or SQL text.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;

use utoipa::ToSchema;
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};

use crate::store::StoreError;

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The refusals every read endpoint may answer with, documented once for all of them: a
/// wrong parameter (400) and a missing or unknown token (401), each with an [`ErrorBody`].
pub struct ReadRefusals;

impl utoipa::IntoResponses for ReadRefusals {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let refusal = |description: &str| {
            let body = Content::new(Some(Ref::from_schema_name("ErrorBody")));
            ResponseBuilder::new()
                .description(description)
                .content("application/json", body)
                .build()
                .into()
        };
        BTreeMap::from([
            (
                "400".to_string(),
                refusal("A parameter is wrong; the message names it"),
            ),
            ("401".to_string(), refusal("No or an unknown token")),
        ])
    }
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code, e.g. `bad_parameter`.
    pub code: String,
    /// A message for people; the request's `x-request-id` header finds it in the logs.
    pub message: String,
}

impl ApiError {
    /// A query, path or body value that is wrong; `param` is named in the message.
    pub fn bad_param(param: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_parameter",
            message: format!("{param}: {message}"),
        }
    }

    /// Something that does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    /// No or an unknown token.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "a bearer token is required (Authorization: Bearer TOKEN)".into(),
        }
    }

    /// A token without the scope the endpoint needs.
    pub fn forbidden() -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: "this endpoint needs an admin token".into(),
        }
    }

    /// The request cannot be done in the current state.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
        }
    }

    /// A dependency (the store, the Kubernetes API) is not there.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        }
    }

    /// A body that is not the JSON the endpoint takes.
    pub fn unsupported_media() -> ApiError {
        ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "send the body as application/json".into(),
        }
    }

    /// A failure of the server's own, logged with its detail; the client gets a generic 500.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "Request failed.");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the server failed; its log has the detail".into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message for people, naming the parameter at fault.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        // The detail goes to the log, not to the client: it can hold SQL and hostnames.
        tracing::error!(error = %e, "Store request failed.");
        match e.is_unavailable() {
            true => ApiError::unavailable("the store is unavailable"),
            false => ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal",
                message: "reading the store failed; the server log has the detail".into(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_stopped_answering_is_a_503_and_a_bad_query_a_500() {
        let status = |e: sqlx::Error| ApiError::from(StoreError::from(e)).status();
        assert_eq!(
            status(sqlx::Error::PoolTimedOut),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(
            status(sqlx::Error::Io(reset)),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(sqlx::Error::RowNotFound),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let kept = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(
            std::error::Error::source(&kept).is_some(),
            "the driver error is kept"
        );
    }
}
