//! A school's visits as an iCalendar (RFC 5545) feed, readable with a per-school feed token
//! so that calendar apps, which cannot log in, can subscribe.

use chrono::{DateTime, Utc};
use entity::{base, booking, school};
use icalendar::{Calendar, Component, Event, EventLike};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use std::collections::HashMap;
use uuid::Uuid;

use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::auth::token_digest;
use crate::domain::enums::BookingStatus;
use crate::domain::schools;
use crate::error::{AppError, Result};

/// Issues a new feed token for a school (the school itself or an admin); the old one stops
/// working.
pub async fn issue_token(
    db: &DatabaseConnection,
    actor: &Actor,
    school_id: Uuid,
    now: DateTime<Utc>,
) -> Result<String> {
    authorize(actor, Action::EditSchool { school_id })?;
    // The new token and its audit entry commit together.
    let txn = crate::db::begin_write(db).await?;
    schools::get(&txn, school_id).await?;
    let token = format!("cal_{}", Uuid::new_v4().simple());
    school::Entity::update_many()
        .col_expr(school::Column::FeedTokenHash, Expr::value(token_digest(&token)))
        .filter(school::Column::Id.eq(school_id))
        .exec(&txn)
        .await?;
    let change = Change::updated("school.feed_token", "school", school_id, &"rotated", &"rotated");
    audit::record(&txn, Some(actor), now, change).await?;
    txn.commit().await?;
    Ok(token)
}

/// Who may read the feed: its feed token, or a signed-in school/admin account.
pub async fn authorize_feed(
    db: &DatabaseConnection,
    school_id: Uuid,
    token: Option<&str>,
    actor: Option<&Actor>,
) -> Result<school::Model> {
    let s = schools::get(db, school_id).await?;
    if let Some(a) = actor {
        authorize(a, Action::EditSchool { school_id })?;
        return Ok(s);
    }
    match (token, &s.feed_token_hash) {
        (Some(t), Some(h)) if token_digest(t) == *h => Ok(s),
        (None, _) => Err(AppError::Unauthorized("a feed token (?token=) or a bearer token is required".into())),
        _ => Err(AppError::Unauthorized("the feed token is invalid or was replaced".into())),
    }
}

/// The confirmed and attended visits of a school as iCalendar text: the base, its address, the
/// times, the group and a link to the booking (`public_url` + its path). A feed's URL ends up
/// at calendar providers, so it carries no check-in code and no phone number.
pub async fn feed(db: &DatabaseConnection, s: &school::Model, public_url: Option<&str>) -> Result<String> {
    let statuses = [BookingStatus::Confirmed, BookingStatus::CheckedIn];
    let bookings = booking::Entity::find()
        .filter(booking::Column::SchoolId.eq(s.id))
        .filter(booking::Column::Status.is_in(BookingStatus::names(&statuses)))
        .order_by_asc(booking::Column::StartsAt)
        .all(db)
        .await?;
    let base_ids: Vec<Uuid> = bookings.iter().map(|b| b.base_id).collect();
    let bases: HashMap<Uuid, base::Model> = base::Entity::find()
        .filter(base::Column::Id.is_in(base_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|b| (b.id, b))
        .collect();
    let mut cal = Calendar::new();
    cal.name(&format!("{} — kepu visits", s.name));
    for b in &bookings {
        let Some(base) = bases.get(&b.base_id) else { continue };
        let link = format!("{}/v1/bookings/{}", public_url.unwrap_or(""), b.id);
        let mut event = Event::new();
        event
            .uid(&format!("{}@kepu", b.id))
            .summary(&format!("科普参观 {} / Visit: {}", base.name_zh, base.name_en))
            .description(&format!(
                "{} students, {} teachers ({}). The booking: {link}",
                b.students, b.teachers, b.audience
            ))
            .location(&base.address)
            .starts(b.starts_at)
            .ends(b.ends_at)
            .timestamp(b.updated_at)
            // A changed visit (resized, moved, its session's times changed) is the same event,
            // revised: calendar apps replace it by UID when the sequence grows.
            .add_property("SEQUENCE", (b.version - 1).max(0).to_string());
        if public_url.is_some() {
            event.url(&link);
        }
        cal.push(event.done());
    }
    Ok(cal.done().to_string())
}
