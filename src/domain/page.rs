//! Keyset pagination: `limit` (default 50, max 500) and an opaque cursor naming the last item.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::geo::LatLon;
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

/// Sorts rows by distance from `center` (ties by id), drops those beyond `radius_km`, and cuts
/// the page after the cursor. Used by every `near=` search.
pub fn page_by_distance<T>(
    rows: Vec<T>,
    center: LatLon,
    radius_km: Option<f64>,
    locate: impl Fn(&T) -> (LatLon, Uuid),
    page: PageRequest,
) -> Paged<(T, f64)> {
    let mut hits: Vec<(T, f64, Uuid)> = rows
        .into_iter()
        .map(|row| {
            let (at, id) = locate(&row);
            let d = center.distance_km(at);
            (row, d, id)
        })
        .filter(|(_, d, _)| radius_km.is_none_or(|r| *d <= r))
        .collect();
    hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)));
    if let Some(after) = page.after {
        let ad = after.distance_km.unwrap_or(f64::NEG_INFINITY);
        hits.retain(|(_, d, id)| d.total_cmp(&ad).then(id.cmp(&after.id)).is_gt());
    }
    let rows = hits.into_iter().map(|(row, d, id)| ((row, d), id)).collect();
    Paged::from_overfetch(rows, page.limit, |((_, d), id)| Cursor { id: *id, distance_km: Some(*d), at: None })
        .map(|(hit, _)| hit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_exactly() {
        let c = Cursor { id: Uuid::now_v7(), distance_km: Some(1.234_567_890_123), at: Some(chrono::Utc::now()) };
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
