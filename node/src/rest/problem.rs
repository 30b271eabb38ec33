//! Errors as `application/problem+json` (RFC 9457), with the status codes
//! and titles of the Orchestration Cluster API: a rejection's title is its
//! Zeebe rejection type (`NOT_FOUND`, `INVALID_STATE`, ...), backpressure is
//! 503 `RESOURCE_EXHAUSTED`.
//!
//! A handler returns a [`Problem`]; the `instance` member (the request path)
//! is filled in by [`fill_instance`], the router's outermost layer, which is
//! the only place that knows the path of every request.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::command::{CommandError, RejectionKind};

/// Media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Always `about:blank`: the title says what kind of error it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short, stable name of the error kind.
    pub title: String,
    /// HTTP status, repeated in the body.
    pub status: u16,
    /// What went wrong, naming the input.
    pub detail: String,
    /// The request path.
    pub instance: String,
}

impl Problem {
    /// A problem with `status` and `title`, and `detail` for the reader.
    pub fn new(status: StatusCode, title: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank",
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: String::new(),
        }
    }

    /// 400 for a request that does not fit the API.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", detail)
    }

    /// 403 for a caller without the permission.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    /// 404 for a path that names nothing.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", detail)
    }

    fn render(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("a problem serialises");
        (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response()
    }
}

impl From<CommandError> for Problem {
    fn from(error: CommandError) -> Problem {
        let detail = error.to_string();
        let (status, title) = match &error {
            CommandError::Rejected { kind, .. } => match kind {
                RejectionKind::InvalidArgument => (StatusCode::BAD_REQUEST, kind.code()),
                RejectionKind::NotFound => (StatusCode::NOT_FOUND, kind.code()),
                RejectionKind::AlreadyExists | RejectionKind::InvalidState => {
                    (StatusCode::CONFLICT, kind.code())
                }
                RejectionKind::ProcessingError => (StatusCode::INTERNAL_SERVER_ERROR, kind.code()),
                RejectionKind::Forbidden => (StatusCode::FORBIDDEN, kind.code()),
            },
            CommandError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            CommandError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            CommandError::ResourceExhausted(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "RESOURCE_EXHAUSTED")
            }
            CommandError::Unavailable(_) | CommandError::NotLeader { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
            }
            CommandError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
            CommandError::Aborted(_) => (StatusCode::INTERNAL_SERVER_ERROR, "ABORTED"),
            CommandError::Unimplemented(_) => (StatusCode::NOT_IMPLEMENTED, "UNIMPLEMENTED"),
            CommandError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        Problem::new(status, title, detail)
    }
}

impl IntoResponse for Problem {
    /// The body is written by [`fill_instance`] once the path is known; the
    /// problem travels there in the response's extensions.
    fn into_response(self) -> Response {
        let mut response = StatusCode::from_u16(self.status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Outermost layer: writes the problem body of an error answer with the
/// request path as `instance`; turns axum's own plain-text answers (unknown
/// path, wrong method) into problems too.
pub async fn fill_instance(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    if let Some(mut problem) = response.extensions_mut().remove::<Problem>() {
        problem.instance = path;
        let challenge = response.headers_mut().remove(header::WWW_AUTHENTICATE);
        let mut rendered = problem.render();
        if let Some(challenge) = challenge {
            rendered
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        return rendered;
    }
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if (status.is_client_error() || status.is_server_error()) && plain {
        let title = match status {
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
            s if s.is_client_error() => "INVALID_ARGUMENT",
            _ => "INTERNAL",
        };
        let detail = match status {
            StatusCode::NOT_FOUND => format!("no endpoint at {path}"),
            StatusCode::METHOD_NOT_ALLOWED => format!("{path} does not take this method"),
            _ => status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_string(),
        };
        let mut problem = Problem::new(status, title, detail);
        problem.instance = path;
        return problem.render();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backpressure_is_503_resource_exhausted() {
        let p = Problem::from(CommandError::ResourceExhausted("over limit".into()));
        assert_eq!((p.status, p.title.as_str()), (503, "RESOURCE_EXHAUSTED"));
    }

    #[test]
    fn rejections_map_to_the_api_statuses() {
        let cases = [
            (RejectionKind::InvalidArgument, 400),
            (RejectionKind::NotFound, 404),
            (RejectionKind::AlreadyExists, 409),
            (RejectionKind::InvalidState, 409),
            (RejectionKind::ProcessingError, 500),
            (RejectionKind::Forbidden, 403),
        ];
        for (kind, status) in cases {
            let p = Problem::from(CommandError::Rejected {
                intent: "COMPLETE".into(),
                kind,
                reason: "job 5 not found".into(),
            });
            assert_eq!(p.status, status);
            assert_eq!(p.title, kind.code());
            assert!(p.detail.contains("job 5 not found"), "{}", p.detail);
        }
    }
}
