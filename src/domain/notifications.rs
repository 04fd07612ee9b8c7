//! Notifications to schools (one row per state change of a booking), to a base's operators
//! (reminders) and to single accounts; the webhook worker (`domain::webhooks`) delivers them.

use chrono::{DateTime, Utc};
use entity::{booking, notification};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::error::Result;

/// Records a notification for the school of `booking`.
pub async fn send(
    conn: &impl ConnectionTrait,
    booking: &booking::Model,
    kind: &str,
    message: String,
    now: DateTime<Utc>,
) -> Result<()> {
    notification::Entity::insert(row(booking, kind, message, now)).exec_without_returning(conn).await?;
    Ok(())
}

/// Who a notification is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    School(Uuid),
    /// The operators of a base.
    Base(Uuid),
    /// One account (a district officer, an admin, a webhook's owner).
    User(Uuid),
}

/// The row of a notification for the school of `booking`, for callers that batch their inserts.
pub fn row(booking: &booking::Model, kind: &str, message: String, now: DateTime<Utc>) -> notification::ActiveModel {
    row_to(Recipient::School(booking.school_id), Some(booking.id), kind, message, now)
}

/// The row of a notification to `to`, about `booking_id` if any.
pub fn row_to(
    to: Recipient,
    booking_id: Option<Uuid>,
    kind: &str,
    message: String,
    now: DateTime<Utc>,
) -> notification::ActiveModel {
    let (school_id, base_id, user_id) = match to {
        Recipient::School(s) => (Some(s), None, None),
        Recipient::Base(b) => (None, Some(b), None),
        Recipient::User(u) => (None, None, Some(u)),
    };
    notification::ActiveModel {
        id: Set(Uuid::now_v7()),
        school_id: Set(school_id),
        base_id: Set(base_id),
        user_id: Set(user_id),
        booking_id: Set(booking_id),
        kind: Set(kind.into()),
        message: Set(message),
        created_at: Set(now),
        delivered_at: Set(None),
        dispatched_at: Set(None),
    }
}

/// Records a notification for a school about no booking in particular (a campaign's result).
pub async fn to_school(
    conn: &impl ConnectionTrait,
    school_id: Uuid,
    kind: &str,
    message: String,
    now: DateTime<Utc>,
) -> Result<()> {
    send_to(conn, Recipient::School(school_id), kind, message, now).await
}

/// Records a notification to `to` about no booking in particular.
pub async fn send_to(
    conn: &impl ConnectionTrait,
    to: Recipient,
    kind: &str,
    message: String,
    now: DateTime<Utc>,
) -> Result<()> {
    notification::Entity::insert(row_to(to, None, kind, message, now)).exec_without_returning(conn).await?;
    Ok(())
}

/// Records a notification for one account.
pub async fn to_user(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    kind: &str,
    message: String,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = row_to(Recipient::User(user_id), None, kind, message, now);
    notification::Entity::insert(row).exec_without_returning(conn).await?;
    Ok(())
}

/// Filters of the notification list. The recipients given (school, bases, account) are
/// alternatives: a notice to any of them is listed; none given: all.
#[derive(Debug, Default, Clone)]
pub struct NotificationFilter {
    pub school_id: Option<Uuid>,
    /// Notices to the operators of these bases.
    pub base_ids: Option<Vec<Uuid>>,
    /// Notices to this account.
    pub user_id: Option<Uuid>,
    pub booking_id: Option<Uuid>,
}

/// Notifications, oldest first.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &NotificationFilter,
    page: PageRequest,
) -> Result<Paged<notification::Model>> {
    let mut q = notification::Entity::find();
    let mut to = Condition::any();
    if let Some(s) = filter.school_id {
        to = to.add(notification::Column::SchoolId.eq(s));
    }
    if let Some(bases) = &filter.base_ids {
        to = to.add(notification::Column::BaseId.is_in(bases.iter().copied()));
    }
    if let Some(u) = filter.user_id {
        to = to.add(notification::Column::UserId.eq(u));
    }
    if !to.is_empty() {
        q = q.filter(to);
    }
    if let Some(b) = filter.booking_id {
        q = q.filter(notification::Column::BookingId.eq(b));
    }
    if let Some(after) = page.after {
        q = q.filter(notification::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(notification::Column::Id).limit(page.limit + 1).all(conn).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |n| Cursor::id(n.id)))
}
