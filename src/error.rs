//! One error type for the whole service, answered as an RFC 9457 `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use serde::Serialize;
use utoipa::ToSchema;

/// Base of every problem `type`; the last path segment is a stable slug.
pub const PROBLEM_BASE: &str = "https://kepu.example/problems/";

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// One broken rule of a request, naming the field (dotted path for nested fields).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    #[schema(example = "location.lat")]
    pub field: String,
    #[schema(example = "must be between 22.5 and 23.95 (the city's bounding box)")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://kepu.example/problems/validation",
    "title": "Validation failed",
    "status": 422,
    "detail": "1 field is invalid",
    "errors": [{"field": "location.lat", "message": "must be between 22.5 and 23.95 (the city's bounding box)"}]
}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed")]
    PreconditionFailed(String),
    #[error("precondition required")]
    PreconditionRequired(String),
    #[error("rate limited")]
    RateLimited { detail: String, retry_after_s: u64 },
    /// A broken domain rule with its own problem slug (e.g. `capacity-exhausted`).
    #[error("{slug}: {detail}")]
    Rule { status: StatusCode, slug: &'static str, detail: String },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A single-field validation error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn forbidden(why: impl Into<String>) -> Self {
        Self::Forbidden(why.into())
    }

    /// A 409 for a broken rule that conflicts with the current state.
    pub fn conflict_rule(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::Rule { status: StatusCode::CONFLICT, slug, detail: detail.into() }
    }

    /// A 422 for a broken rule about the request itself.
    pub fn invalid_rule(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::Rule { status: StatusCode::UNPROCESSABLE_ENTITY, slug, detail: detail.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Rule { status, .. } => *status,
            Self::Db(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable slug at the end of the problem `type`.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation",
            Self::MalformedJson(_) => "malformed-json",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::PayloadTooLarge => "payload-too-large",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::PreconditionFailed(_) => "precondition-failed",
            Self::PreconditionRequired(_) => "precondition-required",
            Self::RateLimited { .. } => "rate-limited",
            Self::Unavailable(_) => "unavailable",
            Self::Rule { slug, .. } => slug,
            Self::Db(_) | Self::Internal(_) => "internal",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::Validation(errors) => match errors.len() {
                1 => format!("{}: {}", errors[0].field, errors[0].message),
                n => format!("{n} fields are invalid"),
            },
            Self::MalformedJson(d) => format!("the body is not valid JSON: {d}"),
            Self::UnsupportedMediaType => "the body must be JSON (Content-Type: application/json)".into(),
            Self::PayloadTooLarge => "the body is too large".into(),
            Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::PreconditionFailed(d)
            | Self::PreconditionRequired(d)
            | Self::Unavailable(d) => d.clone(),
            Self::MethodNotAllowed => "this method is not allowed on this resource".into(),
            Self::RateLimited { detail, .. } | Self::Rule { detail, .. } => detail.clone(),
            // Never leak SQL or internals to the client; they are logged instead.
            Self::Db(_) | Self::Internal(_) => "an internal error occurred; it has been logged".into(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("{PROBLEM_BASE}{}", self.slug()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    res
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            Self::Db(e) => tracing::error!(error = %e, "database error"),
            Self::Internal(e) => tracing::error!(error = ?e, "internal error"),
            _ => {}
        }
        let mut res = problem_response(self.status(), &self.to_problem());
        match &self {
            Self::RateLimited { retry_after_s, .. } => {
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            Self::Unauthorized(_) => {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kepu\""));
            }
            _ => {}
        }
        res
    }
}

/// Turns a unique or foreign-key violation into a 4xx where the query is made.
pub fn map_constraint(err: DbErr, unique: impl FnOnce() -> AppError) -> AppError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => unique(),
        Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
            AppError::Conflict("the change refers to a record that does not exist or is still referenced".into())
        }
        _ => AppError::Db(err),
    }
}
