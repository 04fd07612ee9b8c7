//! The working calendar: public holidays and the weekend days worked in their place (调休).
//! A day is a working day when it is marked working, or is Monday to Friday and not a holiday.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use entity::public_holiday;
use sea_orm::sea_query::OnConflict;
use uuid::Uuid;

use crate::domain::page::{Cursor, PageRequest, Paged};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::sessions::city_offset;
use crate::domain::validate::Validator;
use crate::error::{AppError, Result};

/// The marked days from some date on (working or not); other days go by their weekday.
#[derive(Debug, Clone, Default)]
pub struct WorkCalendar {
    marked: HashMap<NaiveDate, bool>,
}

impl WorkCalendar {
    pub fn new(days: impl IntoIterator<Item = (NaiveDate, bool)>) -> Self {
        Self { marked: days.into_iter().collect() }
    }

    pub fn is_working(&self, day: NaiveDate) -> bool {
        self.marked.get(&day).copied().unwrap_or(!matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
    }

    /// The same local (Asia/Shanghai) time on the `n`th working day after the day `start` is on.
    pub fn add_working_days(&self, start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let mut t = start.with_timezone(&city_offset());
        let mut left = n;
        while left > 0 {
            t += Duration::days(1);
            if self.is_working(t.date_naive()) {
                left -= 1;
            }
        }
        t.with_timezone(&Utc)
    }
}

/// The calendar's marked days from `from` (local date) for the next year: enough for any
/// notice period.
pub async fn calendar_from(conn: &impl ConnectionTrait, from: DateTime<Utc>) -> Result<WorkCalendar> {
    let first = from.with_timezone(&city_offset()).date_naive();
    let days = public_holiday::Entity::find()
        .filter(public_holiday::Column::Day.gte(first))
        .filter(public_holiday::Column::Day.lt(first + Duration::days(366)))
        .all(conn)
        .await?;
    Ok(WorkCalendar::new(days.into_iter().map(|d| (d.day, d.working))))
}

/// The marked days of a year (default: this year in the city), in order.
pub async fn list(
    conn: &impl ConnectionTrait,
    year: Option<i32>,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Paged<public_holiday::Model>> {
    let year = year.unwrap_or_else(|| now.with_timezone(&city_offset()).year());
    let mut v = Validator::new();
    v.year("year", year);
    v.finish()?;
    let (Some(first), Some(next)) = (NaiveDate::from_ymd_opt(year, 1, 1), NaiveDate::from_ymd_opt(year + 1, 1, 1))
    else {
        return Err(AppError::field("year", "not a calendar year"));
    };
    // Days are unique: the cursor carries the last day as its midnight (UTC).
    let first = match page.after.and_then(|c| c.at) {
        Some(at) => first.max(at.date_naive().succ_opt().unwrap_or(next)),
        None => first,
    };
    let rows = public_holiday::Entity::find()
        .filter(public_holiday::Column::Day.gte(first))
        .filter(public_holiday::Column::Day.lt(next))
        .order_by_asc(public_holiday::Column::Day)
        .limit(page.limit + 1)
        .all(conn)
        .await?;
    Ok(Paged::from_overfetch(rows, page.limit, |d| Cursor::at(d.day.and_time(NaiveTime::MIN).and_utc(), Uuid::nil())))
}

/// Marks a day as a holiday (`working: false`) or a make-up working day (`working: true`),
/// replacing what it was. Notices already running keep the end they were given.
pub async fn put(
    db: &DatabaseConnection,
    actor: &Actor,
    day: NaiveDate,
    name: &str,
    working: bool,
    now: DateTime<Utc>,
) -> Result<public_holiday::Model> {
    authorize(actor, Action::ManageCalendar)?;
    let mut v = Validator::new();
    let name = v.text("name", name, 100);
    v.year("day", day.year());
    v.finish()?;
    let name = name.unwrap_or_default();
    let txn = begin_write(db).await?;
    let before = public_holiday::Entity::find_by_id(day).one(&txn).await?;
    let row =
        public_holiday::ActiveModel { day: Set(day), name: Set(name), working: Set(working), updated_at: Set(now) };
    // An upsert: two marks of one day at once both succeed, the later one winning.
    let upsert = OnConflict::column(public_holiday::Column::Day)
        .update_columns([
            public_holiday::Column::Name,
            public_holiday::Column::Working,
            public_holiday::Column::UpdatedAt,
        ])
        .to_owned();
    public_holiday::Entity::insert(row).on_conflict(upsert).exec_without_returning(&txn).await?;
    let after = public_holiday::Entity::find_by_id(day)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("{day} vanished while being marked")))?;
    let change = match &before {
        Some(b) => Change::updated("public_holiday.update", "public_holiday", day, b, &after),
        None => Change::created("public_holiday", day, &after),
    };
    audit::record(&txn, Some(actor), now, change).await?;
    txn.commit().await?;
    Ok(after)
}

/// Unmarks a day: it goes by its weekday again.
pub async fn remove(db: &DatabaseConnection, actor: &Actor, day: NaiveDate, now: DateTime<Utc>) -> Result<()> {
    authorize(actor, Action::ManageCalendar)?;
    let txn = begin_write(db).await?;
    let before = public_holiday::Entity::find_by_id(day)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("{day} is not marked in the calendar")))?;
    public_holiday::Entity::delete_by_id(day).exec(&txn).await?;
    audit::record(&txn, Some(actor), now, Change::deleted("public_holiday", day, &before)).await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn local(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        city_offset().with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().with_timezone(&Utc)
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn holidays_do_not_count_and_make_up_weekend_days_do() {
        let none = WorkCalendar::default();
        assert_eq!(none.add_working_days(local(2026, 11, 26, 10), 5), local(2026, 12, 3, 10));
        // National Day 2026: 1–7 October off, Saturday 10 October worked.
        let mut days: Vec<(NaiveDate, bool)> = (1..=7).map(|d| (day(2026, 10, d), false)).collect();
        days.push((day(2026, 10, 10), true));
        let cal = WorkCalendar::new(days);
        assert!(!cal.is_working(day(2026, 10, 5)));
        assert!(cal.is_working(day(2026, 10, 10)));
        assert!(!cal.is_working(day(2026, 10, 11)));
        // Tuesday 29 September: 30 Sep, then 8, 9, 10 (Sat, worked), 12 October.
        assert_eq!(cal.add_working_days(local(2026, 9, 29, 10), 5), local(2026, 10, 12, 10));
    }
}
