//! Keyset pagination: `limit` (default 50, max 500) and an opaque cursor naming the last item.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::{Expr, ExprTrait, Order};
use sea_orm::{ColumnTrait, Value};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AppError;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;

/// Where the previous page ended: the last item's id, and its distance for `near` searches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "i")]
    pub id: Uuid,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
    /// The last item's time, for lists ordered by time.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The last item's number, for lists ordered by a number (a year).
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub num: Option<i64>,
}

impl Cursor {
    /// The cursor of a list ordered by id alone.
    pub fn id(id: Uuid) -> Self {
        Self { id, distance_km: None, at: None, num: None }
    }

    /// The cursor of a list ordered by a time, then id.
    pub fn at(at: chrono::DateTime<chrono::Utc>, id: Uuid) -> Self {
        Self { id, distance_km: None, at: Some(at), num: None }
    }
}

/// The keyset condition of a list ordered by (`key`, `id`), ascending or descending: the rows
/// after the cursor's `(key_value, cursor_id)`. With an index on (`key`, `id`) the next page
/// starts where the last ended, however deep the page.
pub fn after<C: ColumnTrait>(key: C, key_value: impl Into<Value>, id: C, cursor_id: Uuid, order: Order) -> Expr {
    let row = Expr::tuple([Expr::col(key.as_column_ref()), Expr::col(id.as_column_ref())]);
    let cursor = Expr::tuple([Expr::val(key_value), Expr::val(cursor_id)]);
    match order {
        Order::Desc => row.lt(cursor),
        _ => row.gt(cursor),
    }
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(s: &str) -> Result<Self, AppError> {
        let bad = || AppError::field("cursor", "is not a cursor returned by this list");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: u64,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub fn parse(limit: Option<u64>, cursor: Option<&str>) -> Result<Self, AppError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::field("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let after = cursor.filter(|c| !c.is_empty()).map(Cursor::decode).transpose()?;
        Ok(Self { limit, after })
    }
}

/// One page of a list, with the cursor of the next page when there is one.
#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Paged<T> {
    /// Cuts `rows` (fetched with `limit + 1`) to the page and derives the next cursor.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u64, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(cursor_of) } else { None };
        Self { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged { items: self.items.into_iter().map(f).collect(), next: self.next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_in_cursors_read_back_to_the_same_bits() {
        // Without serde_json's exact float parsing this one comes back one bit off.
        let d = 58.961_555_603_585_836_f64;
        let c = Cursor { distance_km: Some(d), ..Cursor::id(Uuid::nil()) };
        assert_eq!(Cursor::decode(&c.encode()).unwrap().distance_km.map(f64::to_bits), Some(d.to_bits()));
        let mut x = 0.1_f64;
        for _ in 0..10_000 {
            x = (x * 1.618_033_988_749_895 + 0.123_456_789) % 97.0;
            let c = Cursor { distance_km: Some(x), ..Cursor::id(Uuid::nil()) };
            assert_eq!(Cursor::decode(&c.encode()).unwrap().distance_km.map(f64::to_bits), Some(x.to_bits()));
        }
    }

    #[test]
    fn cursor_round_trips_exactly() {
        let c = Cursor {
            id: Uuid::now_v7(),
            distance_km: Some(1.234_567_890_123),
            at: Some(chrono::Utc::now()),
            num: Some(2026),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn garbage_cursor_and_limits_are_rejected() {
        assert!(Cursor::decode("not-a-cursor").is_err());
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(501), None).is_err());
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
    }
}
