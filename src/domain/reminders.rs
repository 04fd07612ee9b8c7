//! Reminders, sent by the sweep: to a school some days before each confirmed visit (by
//! default 3 and 1), and to a base's operators on the day before (from 16:00) with the next
//! day's groups.
//! Each is sent once however many instances sweep: a school's by a conditional update of the
//! booking's `reminded_days` in the transaction that writes the notification, a base's by
//! inserting its key into `sent_reminders` there.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use entity::{base, booking, school, sent_reminder};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::enums::BookingStatus;
use crate::domain::notifications::{self, Recipient};
use crate::domain::sessions::{city_offset, local_time};
use crate::error::Result;

/// Days before a visit that its school is reminded, by default.
pub const DEFAULT_DAYS: [u32; 2] = [3, 1];
/// Reminders looked at per sweep (the next sweep takes the rest).
const BATCH: u64 = 1000;
/// Bases given their notice of the next day per sweep (the next sweep takes the rest).
const BASES_PER_SWEEP: usize = 100;
/// A session lasts at most this long (bounds the scan by `ends_at`, which is indexed).
const LONGEST_SESSION_HOURS: i64 = 12;
/// A base's notice of the next day's groups goes out from this local hour of the day before:
/// by then booking for the next day has closed (by default 24 hours before a visit).
pub const BASE_NOTICE_HOUR: u32 = 16;

/// What one round of reminders sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sent {
    pub schools: usize,
    pub bases: usize,
}

/// The reminder due for a visit starting in `ahead`: the fewest of `days` that is at least
/// that far (a visit booked two days ahead gets the 3-day reminder at once, then the 1-day
/// one), or none when it is further than all of them.
pub fn due(days: &[u32], ahead: Duration) -> Option<i32> {
    days.iter().filter(|d| ahead <= Duration::days(i64::from(**d))).min().and_then(|d| i32::try_from(*d).ok())
}

/// Sends what is due at `now`.
pub async fn send(db: &DatabaseConnection, days: &[u32], now: DateTime<Utc>) -> Result<Sent> {
    Ok(Sent { schools: to_schools(db, days, now).await?, bases: to_bases(db, now).await? })
}

async fn to_schools(db: &DatabaseConnection, days: &[u32], now: DateTime<Utc>) -> Result<usize> {
    let Some(&most) = days.iter().max() else { return Ok(0) };
    let horizon = now + Duration::days(i64::from(most));
    // Exactly the bookings with a reminder due: within some of `days` and not yet reminded
    // that close (those reminded 3 days before are not read again until the 1-day one is due).
    let mut due_now = Condition::any();
    for d in days {
        let d32 = i32::try_from(*d).unwrap_or(i32::MAX);
        due_now = due_now.add(
            Condition::all().add(booking::Column::StartsAt.lte(now + Duration::days(i64::from(*d)))).add(
                Condition::any()
                    .add(booking::Column::RemindedDays.is_null())
                    .add(booking::Column::RemindedDays.gt(d32)),
            ),
        );
    }
    let candidates = booking::Entity::find()
        .filter(booking::Column::Status.eq(BookingStatus::Confirmed.as_str()))
        .filter(booking::Column::EndsAt.gt(now))
        .filter(booking::Column::EndsAt.lte(horizon + Duration::hours(LONGEST_SESSION_HOURS)))
        .filter(booking::Column::StartsAt.gt(now))
        .filter(due_now)
        .order_by_asc(booking::Column::StartsAt)
        .limit(BATCH)
        .all(db)
        .await?;
    let names = crate::domain::bases::names(db, candidates.iter().map(|b| b.base_id), base::Column::NameEn).await?;
    let mut sent = 0;
    for b in candidates {
        let Some(d) = due(days, b.starts_at - now) else { continue };
        if b.reminded_days.is_some_and(|r| r <= d) {
            continue;
        }
        let txn = begin_write(db).await?;
        let claimed = booking::Entity::update_many()
            .col_expr(booking::Column::RemindedDays, Expr::value(d))
            .filter(booking::Column::Id.eq(b.id))
            .filter(booking::Column::Status.eq(BookingStatus::Confirmed.as_str()))
            .filter(
                Condition::any().add(booking::Column::RemindedDays.is_null()).add(booking::Column::RemindedDays.gt(d)),
            )
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !claimed {
            continue;
        }
        let when = if d == 1 { "tomorrow".to_string() } else { format!("in {d} days") };
        let message = format!(
            "Reminder: your visit to {} is {when}, {} ({} students, {} teachers); check-in code {}",
            names.get(&b.base_id).map_or("the base", String::as_str),
            local_time(b.starts_at),
            b.students,
            b.teachers,
            b.code
        );
        notifications::send(&txn, &b, "visit_reminder", message, now).await?;
        txn.commit().await?;
        sent += 1;
    }
    Ok(sent)
}

/// The start of a local (city) day, in UTC.
fn day_start(day: NaiveDate) -> DateTime<Utc> {
    city_offset()
        .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .single()
        .map_or(DateTime::<Utc>::MIN_UTC, |d| d.with_timezone(&Utc))
}

/// On the day before, each base with groups coming gets one notice listing them.
async fn to_bases(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize> {
    use chrono::Timelike;
    let local = now.with_timezone(&city_offset());
    if local.hour() < BASE_NOTICE_HOUR {
        return Ok(0);
    }
    let tomorrow = local.date_naive() + Duration::days(1);
    let (from, to) = (day_start(tomorrow), day_start(tomorrow + Duration::days(1)));
    // Confirmed visits starting tomorrow (the scan bounded by `ends_at`, which is indexed).
    let tomorrows = || {
        booking::Entity::find()
            .filter(booking::Column::Status.eq(BookingStatus::Confirmed.as_str()))
            .filter(booking::Column::EndsAt.gt(from))
            .filter(booking::Column::EndsAt.lte(to + Duration::hours(LONGEST_SESSION_HOURS)))
            .filter(booking::Column::StartsAt.gte(from))
            .filter(booking::Column::StartsAt.lt(to))
    };
    // The bases with groups tomorrow and no notice yet, a batch at a time: a sweep reads the
    // visits of those bases only, not the whole city's day again.
    let bases: Vec<Uuid> =
        tomorrows().select_only().column(booking::Column::BaseId).distinct().into_tuple().all(db).await?;
    let keys: Vec<String> = bases.iter().map(|base| key(*base, tomorrow)).collect();
    let done: Vec<String> = sent_reminder::Entity::find()
        .select_only()
        .column(sent_reminder::Column::Key)
        .filter(sent_reminder::Column::Key.is_in(keys))
        .into_tuple()
        .all(db)
        .await?;
    let pending: Vec<Uuid> =
        bases.into_iter().filter(|base| !done.contains(&key(*base, tomorrow))).take(BASES_PER_SWEEP).collect();
    if pending.is_empty() {
        return Ok(0);
    }
    let groups = tomorrows()
        .filter(booking::Column::BaseId.is_in(pending))
        .order_by_asc(booking::Column::StartsAt)
        .all(db)
        .await?;
    let mut by_base: BTreeMap<Uuid, Vec<&booking::Model>> = BTreeMap::new();
    for b in &groups {
        by_base.entry(b.base_id).or_default().push(b);
    }
    let school_ids = by_base.values().flatten().map(|b| b.school_id);
    let schools: HashMap<Uuid, String> = school::Entity::find()
        .select_only()
        .columns([school::Column::Id, school::Column::Name])
        .filter(school::Column::Id.is_in(school_ids.collect::<Vec<_>>()))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut sent = 0;
    for (base_id, visits) in by_base {
        let txn = begin_write(db).await?;
        let claim = Query::insert()
            .into_table(sent_reminder::Entity)
            .columns([sent_reminder::Column::Key, sent_reminder::Column::SentAt])
            .values_panic([key(base_id, tomorrow).into(), now.into()])
            .on_conflict(OnConflict::column(sent_reminder::Column::Key).do_nothing().to_owned())
            .to_owned();
        if txn.execute(&claim).await?.rows_affected() != 1 {
            continue;
        }
        let visitors: i32 = visits.iter().map(|b| b.students + b.teachers).sum();
        let lines: Vec<String> = visits
            .iter()
            .map(|b| {
                let time = b.starts_at.with_timezone(&city_offset()).format("%H:%M");
                let school = schools.get(&b.school_id).map_or("a school", String::as_str);
                let needs = b.needs.as_deref().map(|n| format!(" — needs: {n}")).unwrap_or_default();
                format!("{time} {school}: {} students, {} teachers{needs}", b.students, b.teachers)
            })
            .collect();
        let message =
            format!("Tomorrow ({tomorrow}): {} groups, {visitors} visitors. {}", visits.len(), lines.join("; "));
        let row = notifications::row_to(Recipient::Base(base_id), None, "groups_tomorrow", message, now);
        entity::notification::Entity::insert(row).exec_without_returning(&txn).await?;
        txn.commit().await?;
        sent += 1;
    }
    sent_reminder::Entity::delete_many()
        .filter(sent_reminder::Column::SentAt.lt(now - Duration::days(7)))
        .exec(db)
        .await?;
    Ok(sent)
}

fn key(base_id: Uuid, day: NaiveDate) -> String {
    format!("base:{base_id}:{day}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fewest_days_that_cover_the_visit_are_due() {
        let days = [3, 1];
        assert_eq!(due(&days, Duration::days(5)), None);
        assert_eq!(due(&days, Duration::days(3)), Some(3));
        assert_eq!(due(&days, Duration::hours(50)), Some(3));
        assert_eq!(due(&days, Duration::hours(24)), Some(1));
        assert_eq!(due(&days, Duration::hours(2)), Some(1));
        assert_eq!(due(&[], Duration::hours(2)), None);
    }
}
