//! The OpenAPI 3.1 document: info, security scheme, tags, and the standard error responses
//! every operation shares.

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Object, Schema};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Spec, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::domain::validate::{OPTIONAL_PHONE_PATTERN, OPTIONAL_TEXT_PATTERN, PHONE_PATTERN, TEXT_PATTERN};
use crate::error::{AppError, FieldError, PROBLEM_JSON, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kepu",
        version = "1.0.0",
        description = "The registry and booking service for Guangzhou's science-popularisation bases (科普基地). \
Public reads need no token; writes need a bearer token from `POST /v1/auth/token`. \
The web console at `/` signs in with a session cookie from `POST /v1/auth/session` instead, and sends \
its `X-CSRF-Token` with every write. \
Errors are RFC 9457 `application/problem+json` documents whose `type` ends with a stable slug.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecurityAddon),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "auth", description = "Logging in and out"),
        (name = "accounts", description = "Accounts and their roles (admin)"),
        (name = "districts", description = "The city's districts (reference data)"),
        (name = "bases", description = "Science-popularisation bases (科普基地)"),
        (name = "exhibits", description = "Exhibits of a base (展品), and exhibit sharing between bases (展品共享)"),
        (name = "schools", description = "Schools that book visits"),
        (name = "sessions", description = "Bookable visit times at a base"),
        (name = "capacity", description = "Capacity pools shared by sessions"),
        (name = "bookings", description = "School visits, check-in, calendar feeds and notifications"),
        (name = "tours", description = "Science tours (科普一日游): day routes through several bases, booked whole"),
        (name = "campaigns", description = "Tour sign-up campaigns (科普游报名) and their fair, verifiable draw"),
        (name = "accreditation", description = "Accreditation (认定): standards, applications, public notice, certificates"),
        (name = "evaluation", description = "Annual evaluation (年度评估)"),
        (name = "signage", description = "Signage (标识): standards, signs, inspections"),
        (name = "calendar", description = "The working calendar: public holidays and make-up working days"),
        (name = "statistics", description = "City science statistics (科普统计) and the district annual report"),
        (name = "webhooks", description = "Webhook subscriptions: notifications sent, signed, to an account's URL"),
        (name = "audit", description = "The audit log (admin)"),
        (name = "admin", description = "The bureau's checks on the system"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut Spec) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `POST /v1/auth/token`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "kepu_session",
                "The web console's session from `POST /v1/auth/session`; a write signed in by it must also carry \
                 the session's `X-CSRF-Token` header",
            ))),
        );
    }
}

/// Adds the errors every operation of a kind can answer — 400/415/422 where a body or query
/// is read, 401/403 where a token is required, 500 everywhere — and gives every problem
/// response an example.
pub struct StandardErrors;

fn problem_response(description: &str, example: &AppError) -> RefOr<utoipa::openapi::Response> {
    let example_json = serde_json::to_value(example.to_problem()).unwrap_or_default();
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .example(Some(example_json))
                    .build(),
            )
            .build(),
    )
}

fn add(op: &mut Operation, status: &str, description: &str, example: AppError) {
    op.responses.responses.entry(status.to_string()).or_insert_with(|| problem_response(description, &example));
}

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut Spec) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let limited = !crate::security::exempt(path);
            for op in
                [item.get.as_mut(), item.post.as_mut(), item.put.as_mut(), item.patch.as_mut(), item.delete.as_mut()]
                    .into_iter()
                    .flatten()
            {
                let has_body = op.request_body.is_some();
                let has_query = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query))
                });
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                if has_body {
                    add(
                        op,
                        "400",
                        "The body is not valid JSON",
                        AppError::MalformedJson("expected value at line 1 column 1".into()),
                    );
                    add(op, "415", "The body is not JSON", AppError::UnsupportedMediaType);
                }
                if has_body || has_query {
                    add(
                        op,
                        "422",
                        "A value breaks a rule; `errors` names each field",
                        AppError::field("limit", "must be between 1 and 500"),
                    );
                }
                if secured {
                    add(
                        op,
                        "401",
                        "No valid bearer token",
                        AppError::Unauthorized("a bearer token is required".into()),
                    );
                    add(
                        op,
                        "403",
                        "The token's role or scope does not allow this",
                        AppError::forbidden("a school account cannot edit base 0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b"),
                    );
                }
                if limited {
                    op.responses.responses.entry("429".to_string()).or_insert_with(rate_limited_response);
                }
                add(op, "500", "A bug; it has been logged", AppError::Internal(anyhow::anyhow!("bug")));
                fill_problem_examples(op);
            }
        }
    }
}

/// 429 from the request-rate limits, with the fields that say when to come back.
fn rate_limited_response() -> RefOr<utoipa::openapi::Response> {
    let example = AppError::RateLimited {
        detail: "too many requests: anonymous callers may make 600 a minute (bursts of 100); try again in 3 s".into(),
        retry_after_s: 3,
    };
    let RefOr::T(mut response) = problem_response(
        "Too many requests from this caller (per account when signed in, else per address); \
         wait `Retry-After` seconds",
        &example,
    ) else {
        unreachable!("problem_response builds the response itself")
    };
    let text =
        || utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String).build();
    for (name, description) in [
        ("Retry-After", "Seconds to wait"),
        (
            "RateLimit-Policy",
            "The caller's policy: its burst `q` and the seconds `w` a burst refills in, e.g. `\"anonymous\";q=100;w=10`",
        ),
        ("RateLimit", "What is left: `r` requests, full again in `t` seconds, e.g. `\"anonymous\";r=0;t=3`"),
    ] {
        let mut header = utoipa::openapi::header::Header::new(text());
        header.description = Some(description.into());
        response.headers.insert(name.into(), RefOr::T(header));
    }
    RefOr::T(response)
}

/// Gives explicitly listed problem responses (404, 409, 412, …) an example of their status.
fn fill_problem_examples(op: &mut Operation) {
    let booking = op.operation_id.as_deref() == Some("create_booking");
    for (status, resp) in op.responses.responses.iter_mut() {
        let RefOr::T(resp) = resp else { continue };
        let Some(RefOr::T(content)) = resp.content.get_mut(PROBLEM_JSON) else { continue };
        if content.example.is_some() {
            continue;
        }
        let example = match status.as_str() {
            "401" => AppError::Unauthorized("unknown username or wrong password".into()),
            "403" => AppError::forbidden("a school account cannot read the feed of another school"),
            "404" => AppError::not_found("no base with id 0193a5d2-7c1e-7a3b-9f00-1c2d3e4f5a6b"),
            "409" if booking => AppError::conflict_rule(
                "capacity-exhausted",
                "12 places left and the group needs 48; send waitlist: true to wait for a place",
            ),
            "409" => AppError::Conflict("the change conflicts with the current state".into()),
            "412" => AppError::PreconditionFailed(
                "the resource has changed (current ETag \"4\"); fetch it again and retry".into(),
            ),
            "422" => AppError::Validation(vec![crate::error::FieldError::new(
                "teachers",
                "at least one teacher per 20 students: 3 needed",
            )]),
            "428" => AppError::PreconditionRequired(
                "send If-Match with the ETag you last read, so edits cannot collide".into(),
            ),
            "429" => {
                AppError::RateLimited { detail: "too many failed log-ins; try again later".into(), retry_after_s: 600 }
            }
            "503" => AppError::Unavailable("the database is unreachable".into()),
            _ => continue,
        };
        content.example = serde_json::to_value(example.to_problem()).ok();
    }
}

/// Links from each creating operation to the operations that take the new id, so that
/// clients (and stateful API testers) can follow them.
pub struct Links;

/// (operation, its success status, where the id is in its answer, the operations taking it)
const LINKS: &[(&str, &str, &str, &[&str])] = &[
    (
        "create_base",
        "201",
        "/id",
        &[
            "get_base",
            "update_base",
            "list_exhibits",
            "create_exhibit",
            "create_session",
            "create_sign",
            "list_base_evaluations",
            "check_in_at_gate",
        ],
    ),
    ("create_exhibit", "201", "/id", &["get_exhibit", "update_exhibit", "delete_exhibit"]),
    ("create_school", "201", "/id", &["get_school", "update_school", "school_calendar", "create_calendar_token"]),
    ("create_user", "201", "/id", &["get_user", "update_user"]),
    ("create_session", "201", "/id", &["get_session", "update_session", "cancel_session"]),
    ("create_pool", "201", "/id", &["get_pool", "attach_session"]),
    (
        "create_booking",
        "201",
        "/id",
        &["get_booking", "update_booking", "move_booking", "cancel_booking", "check_in_booking"],
    ),
    (
        "create_accreditation",
        "201",
        "/id",
        &[
            "get_accreditation",
            "submit_accreditation",
            "recommend_accreditation",
            "reject_accreditation",
            "assign_accreditation",
            "score_accreditation",
            "start_public_notice",
            "create_objection",
            "decide_accreditation",
        ],
    ),
    (
        "create_sign",
        "201",
        "/id",
        &["get_sign", "approve_sign", "reject_sign", "install_sign", "inspect_sign", "replace_sign", "remove_sign"],
    ),
    ("list_bases", "200", "/items/0/id", &["get_base", "list_exhibits", "list_base_evaluations"]),
    ("list_sessions", "200", "/items/0/id", &["get_session"]),
    (
        "list_evaluations",
        "200",
        "/items/0/id",
        &["get_evaluation", "put_self_report", "assign_evaluation", "score_evaluation", "finalize_evaluation"],
    ),
];

impl Modify for Links {
    fn modify(&self, openapi: &mut Spec) {
        for item in openapi.paths.paths.values_mut() {
            for op in [item.get.as_mut(), item.post.as_mut()].into_iter().flatten() {
                let Some((_, status, pointer, targets)) =
                    LINKS.iter().find(|(from, ..)| op.operation_id.as_deref() == Some(*from))
                else {
                    continue;
                };
                let Some(RefOr::T(answer)) = op.responses.responses.get_mut(*status) else { continue };
                for target in *targets {
                    let link = LinkBuilder::new()
                        .operation_id(*target)
                        .parameter("id", format!("$response.body#{pointer}"))
                        .description(format!("The id in this answer, for `{target}`"))
                        .build();
                    answer.links.insert(target.to_string(), RefOr::T(link));
                }
            }
        }
    }
}

/// Gives the text fields of request bodies the `pattern` of the rule that reads them
/// (`validate::text`: no control characters inside, not blank; `opt_text`: the same, or blank
/// for none; `phone` and `opt_phone`). utoipa takes a `pattern` only as a string literal, so
/// the shared patterns are set here rather than on each field.
pub struct TextPatterns;

const TEXT: &str = TEXT_PATTERN;
const OPT_TEXT: &str = OPTIONAL_TEXT_PATTERN;
const PHONE: &str = PHONE_PATTERN;
const OPT_PHONE: &str = OPTIONAL_PHONE_PATTERN;

/// (schema, pattern, the fields that take it). `name[]` is each item of the array `name`,
/// `name{}` each value of the map `name`.
const TEXT_FIELDS: &[(&str, &str, &[&str])] = &[
    ("BaseInput", TEXT, &["name_zh", "name_en", "host_org", "address", "themes[]"]),
    ("BaseInput", OPT_TEXT, &["opening_hours", "accessibility"]),
    ("BasePatch", TEXT, &["name_zh", "name_en", "host_org", "address", "themes[]"]),
    ("BasePatch", OPT_TEXT, &["opening_hours", "accessibility"]),
    ("Contact", OPT_PHONE, &["phone"]),
    ("ExhibitInput", TEXT, &["name"]),
    ("ExhibitInput", OPT_TEXT, &["description", "hall"]),
    ("ExhibitPatch", TEXT, &["name"]),
    ("ExhibitPatch", OPT_TEXT, &["description", "hall"]),
    ("SchoolInput", TEXT, &["name", "address"]),
    ("SchoolPatch", TEXT, &["name", "address"]),
    ("NewBooking", TEXT, &["contact_name"]),
    ("NewBooking", PHONE, &["contact_phone"]),
    ("NewBooking", OPT_TEXT, &["needs"]),
    ("CancelBooking", OPT_TEXT, &["reason"]),
    ("NewPoolBody", TEXT, &["name"]),
    ("CancelSession", TEXT, &["reason"]),
    ("MarkDay", TEXT, &["name"]),
    ("NewSignageStandard", TEXT, &["version"]),
    ("SignType", TEXT, &["size", "material", "colour"]),
    ("NewSign", OPT_TEXT, &["road_name"]),
    ("ApproveBody", OPT_TEXT, &["traffic_police_ref", "comment"]),
    ("RejectBody", TEXT, &["comment"]),
    ("InspectionBody", OPT_TEXT, &["photo_url", "notes"]),
    ("CloseBody", OPT_TEXT, &["note"]),
    ("NewStandardBody", TEXT, &["version"]),
    ("Criterion", TEXT, &["name"]),
    ("CommentBody", TEXT, &["comment"]),
    ("DecideBody", TEXT, &["comment"]),
    ("ScoresBody", OPT_TEXT, &["comment", "comments{}"]),
    ("NewObjectionBody", TEXT, &["reason"]),
    ("NewObjectionBody", OPT_TEXT, &["name", "contact"]),
    ("ResolveBody", TEXT, &["resolution"]),
    ("Section", TEXT, &["name"]),
    ("Indicator", TEXT, &["name"]),
    ("NewTour", TEXT, &["title", "meeting_point"]),
    ("NewCampaign", TEXT, &["title"]),
    ("NewTourBooking", TEXT, &["contact_name"]),
    ("NewTourBooking", PHONE, &["contact_phone"]),
    ("NewTourBooking", OPT_TEXT, &["needs"]),
];

impl Modify for TextPatterns {
    fn modify(&self, openapi: &mut Spec) {
        let Some(components) = openapi.components.as_mut() else { return };
        for (schema, pattern, fields) in TEXT_FIELDS {
            for field in *fields {
                let text = components.schemas.get_mut(*schema).and_then(|s| text_field(s, field));
                debug_assert!(text.is_some(), "the spec has no text field {schema}.{field}");
                if let Some(text) = text {
                    text.pattern = Some(pattern.to_string());
                }
            }
        }
    }
}

/// The string schema of `field` (see [`TEXT_FIELDS`]) in an object schema.
fn text_field<'a>(schema: &'a mut RefOr<Schema>, field: &str) -> Option<&'a mut Object> {
    let RefOr::T(Schema::Object(object)) = schema else { return None };
    let (name, part) = match (field.strip_suffix("[]"), field.strip_suffix("{}")) {
        (Some(name), _) => (name, "items"),
        (_, Some(name)) => (name, "values"),
        _ => (field, ""),
    };
    let property = object.properties.get_mut(name)?;
    let text = match (part, property) {
        ("items", RefOr::T(Schema::Array(array))) => match &mut array.items {
            ArrayItems::RefOrSchema(items) => items.as_mut(),
            ArrayItems::False => return None,
        },
        ("values", RefOr::T(Schema::Object(map))) => match map.additional_properties.as_deref_mut()? {
            AdditionalProperties::RefOr(values) => values,
            AdditionalProperties::FreeForm(_) => return None,
        },
        ("", property) => property,
        _ => return None,
    };
    match text {
        RefOr::T(Schema::Object(text)) => Some(text),
        _ => None,
    }
}
