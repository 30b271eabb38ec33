//! JSON request bodies: parsed with serde, and every failure answered as a
//! 400 problem naming the field and the reason (415 when the body is not
//! JSON). Variables documents must be JSON objects.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// A required JSON body.
#[derive(Debug)]
pub struct Body<T>(pub T);

/// A JSON body that may be absent (then `T::default()`).
#[derive(Debug)]
pub struct MaybeBody<T>(pub T);

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|t| {
            let t = t.split(';').next().unwrap_or("").trim();
            t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn bytes(request: Request) -> Result<(bool, Bytes), Problem> {
    let json = is_json(&request);
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|e| Problem::new(e.status(), "INVALID_ARGUMENT", e.body_text()))?;
    Ok((json, bytes))
}

fn parse<T: DeserializeOwned>(json: bool, bytes: &[u8]) -> Result<T, Problem> {
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the request body must be JSON (Content-Type: application/json)",
        ));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Problem::bad_request(format!("the request body is invalid: {inner}"))
        } else {
            Problem::bad_request(format!("'{path}' is invalid: {inner}"))
        }
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Problem> {
        let (json, bytes) = bytes(request).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Problem::bad_request("the request body is required"));
        }
        parse(json, &bytes).map(Body)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for MaybeBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Problem> {
        let (json, bytes) = bytes(request).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeBody(T::default()));
        }
        parse(json, &bytes).map(MaybeBody)
    }
}

/// A variables document as the engine takes it: a JSON object's text, `{}`
/// when absent or null.
pub fn variables(field: &str, value: Option<&serde_json::Value>) -> Result<String, Problem> {
    match value {
        None | Some(serde_json::Value::Null) => Ok("{}".to_string()),
        Some(v @ serde_json::Value::Object(_)) => Ok(v.to_string()),
        Some(_) => Err(Problem::bad_request(format!(
            "'{field}' must be a JSON object"
        ))),
    }
}

/// A JSON document the engine produced (variables, custom headers), as a
/// JSON value; empty text is `{}`.
pub fn document(text: &str) -> serde_json::Value {
    if text.trim().is_empty() {
        return serde_json::Value::Object(Default::default());
    }
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
}
