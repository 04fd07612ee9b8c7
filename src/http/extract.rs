//! Extractors that answer in our problem shape: JSON bodies, queries and paths with
//! field-named errors, the authenticated caller, `If-Match`, and the client address.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::Value;

use crate::domain::Precondition;
use crate::domain::access::Actor;
use crate::domain::auth;
use crate::domain::idempotency::{Idempotency, Made};
use crate::domain::validate;
use crate::error::{AppError, FieldError};
use crate::state::AppState;

/// A JSON body: syntax errors are 400 `malformed-json`; a value of the wrong type or a missing
/// field is 422 naming the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(AppError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_) => AppError::PayloadTooLarge,
            other => AppError::MalformedJson(other.body_text()),
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserializes JSON: first the syntax (400), then the shape (422 naming the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| AppError::MalformedJson(e.to_string()))?;
    // Every request body of this API is an object; serde would also read a struct from an array.
    if !value.is_object() {
        return Err(AppError::field("body", "must be a JSON object"));
    }
    if let Some((field, why)) = refused_text(&value) {
        return Err(AppError::field(field, why));
    }
    integral_floats_as_integers(&mut value);
    from_value(value)
}

/// JSON has one kind of number, and JSON Schema counts `120.0` as an integer: so does the API.
/// An integral float becomes an integer (which a float field still reads); any other number
/// stays as it is, and an integer field refuses it.
fn integral_floats_as_integers(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) => {
            // i64::MAX as f64 is 2^63, the first float past the range.
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0)
                && f >= i64::MIN as f64
                && f < i64::MAX as f64
            {
                *n = (f as i64).into();
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(m) => m.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// The path of the first string (or key) in `v` that `refused` refuses.
fn string_at(v: &serde_json::Value, path: &str, refused: &impl Fn(&str) -> bool) -> Option<String> {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match v {
        serde_json::Value::String(s) if refused(s) => Some(if path.is_empty() { "body".into() } else { path.into() }),
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            string_at(item, &format!("{}[{i}]", if path.is_empty() { "body" } else { path }), refused)
        }),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, item)| {
            if refused(k) { Some(join(&k.replace('\0', ""))) } else { string_at(item, &join(k), refused) }
        }),
        _ => None,
    }
}

/// Texts no request may hold: a NUL character, which no database column should receive
/// (PostgreSQL refuses it in text), and a time in a leap second (`23:59:60Z`), which would be
/// stored as written and sort after the next minute's first second. The field and why, if so.
fn refused_text(v: &serde_json::Value) -> Option<(String, &'static str)> {
    let nul = |s: &str| s.contains('\0');
    string_at(v, "", &nul)
        .map(|f| (f, "must not contain a NUL character"))
        .or_else(|| string_at(v, "", &validate::is_leap_second).map(|f| (f, validate::LEAP_SECOND)))
}

/// Deserializes an already-parsed JSON value, naming the field of an error.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AppError> {
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        AppError::Validation(vec![FieldError::new(field_name(&path, &message), clean_message(&message))])
    })
}

/// A parsed JSON value read as serde_json reads it, except that a struct is read only from an
/// object: serde's derive also reads a struct from an array of its fields (`"contact": [null,
/// null]`, `"booking_rules": []`), which the documented schemas refuse.
struct Strict(Value);

impl<'de> de::Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => n.deserialize_any(visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let len = items.len();
                let mut items = StrictSeq(items.into_iter());
                let value = visitor.visit_seq(&mut items)?;
                match items.0.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(len, &"fewer elements in array")),
                }
            }
            Value::Object(m) => visitor.visit_map(StrictMap { entries: m.into_iter(), value: None }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match &self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(IntoDeserializer::<serde_json::Error>::into_deserializer(s)),
            // The API's enums are all strings; anything else is refused as serde_json refuses it.
            other => other.deserialize_enum(name, variants, visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct StrictSeq(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for StrictSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(Strict(v))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct StrictMap {
    entries: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for StrictMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.value = Some(value);
        seed.deserialize(IntoDeserializer::<serde_json::Error>::into_deserializer(key)).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let value = self.value.take().ok_or_else(|| de::Error::custom("a map value was read before its key"))?;
        seed.deserialize(Strict(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => de::Unexpected::Signed(i),
            (_, Some(u)) => de::Unexpected::Unsigned(u),
            _ => de::Unexpected::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// The field an error is about. serde reports a missing field at its parent, so the name is
/// taken from the message and joined to the parent's path.
fn field_name(path: &str, message: &str) -> String {
    let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_string(),
        (".", None) => "body".to_string(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (p, None) => p.to_string(),
    }
}

/// Drops serde's " at line 1 column 12" suffix.
fn clean_message(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Query parameters with field-named 422s.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or("");
        let params: serde_json::Map<String, Value> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        if let Some((field, why)) = refused_text(&Value::Object(params)) {
            return Err(AppError::field(field, why));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            AppError::field(field_name(&path, &msg), msg)
        })
    }
}

/// A path parameter; one that cannot name a resource (a malformed id) is a 404.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let malformed = || AppError::not_found("no resource at this path (malformed id)");
        // A NUL can name nothing stored (and PostgreSQL refuses it in text).
        if percent_decoded(parts.uri.path()).contains('\0') {
            return Err(malformed());
        }
        Path::<T>::from_request_parts(parts, state).await.map(|Path(v)| ApiPath(v)).map_err(|_| malformed())
    }
}

fn percent_decoded(path: &str) -> String {
    form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes()).map(|(_, v)| v.into_owned()).collect()
}

fn bearer(parts: &Parts) -> Result<Option<String>, AppError> {
    bearer_of(&parts.headers)
}

/// The bearer token of an `Authorization` header, if there is one; 401 if it is malformed.
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or("");
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(AppError::Unauthorized("the Authorization header must be `Bearer <token>`".into())),
    }
}

/// The name of the console's session cookie (its value is a bearer token).
pub const SESSION_COOKIE: &str = "kepu_session";
/// The header a console request that changes something carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session token of the console's cookie, if exactly one is sent: two (one planted for a
/// narrower path by another site of the same domain) sign nobody in.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_string());
    let first = values.next()?;
    values.all(|other| other == first).then_some(first)
}

/// How a request says who it is.
enum Credential {
    Bearer(String),
    /// The console's cookie; a request that changes something carried the session's CSRF
    /// token too.
    Cookie(String),
}

/// The request's credential: its bearer token, else the console's session cookie, which a
/// request other than GET, HEAD or OPTIONS may use only with the session's `X-CSRF-Token`
/// (403 otherwise: another site's form or script can send the cookie, never the token).
fn credential(parts: &Parts) -> Result<Option<Credential>, AppError> {
    if let Some(token) = bearer(parts)? {
        return Ok(Some(Credential::Bearer(token)));
    }
    let Some(token) = session_cookie(&parts.headers) else {
        return Ok(None);
    };
    if !parts.method.is_safe() {
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !auth::same_secret(sent, &auth::csrf_token(&token)) {
            return Err(AppError::forbidden(
                "a request signed in by the console's session cookie must carry the session's X-CSRF-Token header",
            ));
        }
    }
    Ok(Some(Credential::Cookie(token)))
}

fn request_id(parts: &Parts) -> Option<String> {
    parts.headers.get(crate::telemetry::REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The authenticated caller; 401 without a valid bearer token.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Actor);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = match credential(parts)? {
            Some(Credential::Bearer(token) | Credential::Cookie(token)) => token,
            None => return Err(AppError::Unauthorized("a bearer token is required".into())),
        };
        let mut actor = auth::authenticate(&state.db, &state.tokens, &token, state.now()).await?;
        actor.request_id = request_id(parts);
        Ok(AuthUser(actor))
    }
}

/// The caller if a token is given; a bad token is still a 401, never anonymous.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<Actor>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        match credential(parts)? {
            None => Ok(MaybeAuthUser(None)),
            Some(Credential::Bearer(_)) => {
                AuthUser::from_request_parts(parts, state).await.map(|a| MaybeAuthUser(Some(a.0)))
            }
            // A cookie is sent by the browser unasked: one whose session has ended reads the
            // public pages as anyone does.
            Some(Credential::Cookie(token)) => {
                match auth::authenticate(&state.db, &state.tokens, &token, state.now()).await {
                    Ok(mut actor) => {
                        actor.request_id = request_id(parts);
                        Ok(MaybeAuthUser(Some(actor)))
                    }
                    Err(AppError::Unauthorized(_)) => Ok(MaybeAuthUser(None)),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// The raw bearer token of the request (for revoking it).
#[derive(Debug)]
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        bearer(parts)?.map(BearerToken).ok_or_else(|| AppError::Unauthorized("a bearer token is required".into()))
    }
}

/// The `If-Match` header: absent, `*`, or one entity tag.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<Precondition>);

impl IfMatch {
    /// 428 when the header is missing.
    pub fn required(self) -> Result<Precondition, AppError> {
        self.0.ok_or_else(|| {
            AppError::PreconditionRequired("send If-Match with the ETag you last read, so edits cannot collide".into())
        })
    }

    /// Absent means "any version".
    pub fn optional(self) -> Precondition {
        self.0.unwrap_or(Precondition::Any)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let v = v.to_str().unwrap_or("").trim();
        if v == "*" {
            return Ok(IfMatch(Some(Precondition::Any)));
        }
        // A tag we never issued (or a weak one, which If-Match must not match) can never match.
        let version =
            v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).and_then(|s| s.parse::<i32>().ok()).unwrap_or(-1);
        Ok(IfMatch(Some(Precondition::Version(version))))
    }
}

/// The entity tag of a stored version.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

/// The client's address: the TCP peer, or behind trusted proxies the address they name
/// ([`crate::security::client_address`]).
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientIp(crate::security::address_of(state, &parts.headers, peer).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::integral_floats_as_integers;

    #[test]
    fn integral_floats_become_integers_and_other_numbers_stay() {
        let mut v = json!({"a": 120.0, "b": [2168.0, -3.0, -0.0], "c": {"d": 120.5, "e": 7, "f": 1e300}});
        integral_floats_as_integers(&mut v);
        assert_eq!(v, json!({"a": 120, "b": [2168, -3, 0], "c": {"d": 120.5, "e": 7, "f": 1e300}}));
        assert!(v["a"].is_i64() && v["c"]["d"].is_f64() && v["c"]["f"].is_f64());
    }
}

/// A JSON body with its `Idempotency-Key` (if the client sent one), keyed to the body's
/// digest: the same key and body replay the first answer ([`replayable`]).
#[derive(Debug)]
pub struct Idempotent<T> {
    pub key: Option<Idempotency>,
    pub body: T,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Idempotent<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let header = req.headers().get("idempotency-key").map(|v| v.to_str().unwrap_or("").to_string());
        let ApiJson(raw) = ApiJson::<Value>::from_request(req, state).await?;
        let key = header.map(|k| Idempotency::of(&k, &raw)).transpose()?;
        Ok(Self { key, body: from_value(raw)? })
    }
}

/// The answer to a write that an `Idempotency-Key` may replay: the new record as `render`
/// shows it, or the first answer again.
pub fn made<T>(made: Made<T>, render: impl Fn(&T) -> (u16, Value)) -> axum::response::Response {
    match made {
        Made::New(record) => {
            let (status, body) = render(&record);
            replayable(status, body, false)
        }
        Made::Replay(r) => replayable(r.status, r.body, true),
    }
}

/// An answer that an `Idempotency-Key` may give again; a replay says so
/// (`Idempotent-Replayed: true`).
pub fn replayable(status: u16, body: Value, replayed: bool) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    let mut res = (status, axum::Json(body)).into_response();
    if replayed {
        res.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
    }
    res
}
