//! The rules of kepu, independent of HTTP: each module owns one part of the domain.

pub mod access;
pub mod audit;
pub mod auth;
pub mod bases;
pub mod districts;
pub mod enums;
pub mod exhibits;
pub mod geo;
pub mod page;
pub mod schools;
pub mod users;
pub mod validate;

/// What `If-Match` asked for: any current version (`*`) or exactly this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    Any,
    Version(i32),
}

impl Precondition {
    /// 412 unless the stored version satisfies the precondition.
    pub fn check(self, current: i32) -> crate::error::Result<()> {
        match self {
            Precondition::Version(v) if v != current => Err(crate::error::AppError::PreconditionFailed(format!(
                "the resource has changed (current ETag \"{current}\"); fetch it again and retry"
            ))),
            _ => Ok(()),
        }
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
