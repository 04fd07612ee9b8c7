//! The rules of kepu, independent of HTTP: each module owns one part of the domain.

pub mod access;
pub mod accreditation;
pub mod audit;
pub mod auth;
pub mod bases;
pub mod bookings;
pub mod calendar;
pub mod campaigns;
pub mod capacity;
pub mod disclosure;
pub mod districts;
pub mod enums;
pub mod evaluation;
pub mod exhibits;
pub mod geo;
pub mod holidays;
pub mod idempotency;
pub mod loans;
pub mod lottery;
pub mod nearest;
pub mod notifications;
pub mod page;
pub mod reminders;
pub mod schools;
pub mod sessions;
pub mod signage;
pub mod statistics;
pub mod tours;
pub mod users;
pub mod validate;
pub mod webhooks;

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

/// Writes `row` over the record `id` only while it is still at `version` (optimistic
/// concurrency); 412 when another writer got there first.
pub async fn write_if_version<E>(
    conn: &impl sea_orm::ConnectionTrait,
    row: E::ActiveModel,
    id: (E::Column, uuid::Uuid),
    version: (E::Column, i32),
) -> crate::error::Result<()>
where
    E: sea_orm::EntityTrait,
    E::ActiveModel: Send,
{
    use sea_orm::{ColumnTrait, QueryFilter};
    let res = E::update_many().set(row).filter(id.0.eq(id.1)).filter(version.0.eq(version.1)).exec(conn).await?;
    if res.rows_affected == 0 {
        return Err(crate::error::AppError::PreconditionFailed(
            "the resource was changed concurrently; fetch it again and retry".into(),
        ));
    }
    Ok(())
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
