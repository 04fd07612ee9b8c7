//! Nearest-first walks over located rows (bases, schools, signs) without reading the whole
//! table: expanding rings over the `(lat, lon)` index. Each ring is one box query; the rows
//! in it are ordered by exact great-circle distance (then id), and only those within the
//! ring's radius are handed out, so that what lies beyond, and may be closer than a row of
//! the box's corners, comes in order with the next ring. Stateless, so any number of kepu
//! instances (and a read replica) give the same answers with nothing to keep in sync.

use std::collections::VecDeque;

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::domain::geo::{BoundingBox, CITY_BBOX, LatLon};
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::error::Result;

/// The first ring's radius beyond the nearest point of the city (a ring query that reads a
/// few more rows costs less than another ring).
const FIRST_RING_KM: f64 = 3.0;
/// Rings grow by at least this factor…
const MIN_GROWTH: f64 = 1.5;
/// …and at most this one.
const MAX_GROWTH: f64 = 4.0;

/// A row found near the centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub id: Uuid,
    pub distance_km: f64,
}

impl Near {
    fn after(&self, key: (f64, Uuid)) -> bool {
        self.distance_km.total_cmp(&key.0).then(self.id.cmp(&key.1)).is_gt()
    }
}

/// A walk outwards from `center`, handing out rows by (distance, id).
#[derive(Debug)]
pub struct Rings {
    center: LatLon,
    /// Rows beyond this distance are never handed out.
    radius_km: Option<f64>,
    /// The last (distance, id) handed out, or where to start after.
    after: (f64, Uuid),
    /// Every row within this distance has been read (negative before the first ring).
    known_km: f64,
    /// Rows within `known_km`, counted from the centre (those before `after` included).
    found: usize,
    /// Read, in order, not yet handed out.
    pending: VecDeque<Near>,
    exhausted: bool,
}

impl Rings {
    /// Starts a walk that hands out rows after `after` (a distance and an id; `Uuid::nil()`
    /// takes every row at that distance).
    pub fn new(center: LatLon, radius_km: Option<f64>, after: Option<(f64, Uuid)>) -> Self {
        Self {
            center,
            radius_km,
            after: after.unwrap_or((f64::NEG_INFINITY, Uuid::nil())),
            known_km: -1.0,
            found: 0,
            pending: VecDeque::new(),
            exhausted: false,
        }
    }

    /// The next `n` rows (fewer at the end), and every further row at the same distance as the
    /// last, so that a caller's batches never split rows of equal distance. `fetch` reads the
    /// rows in a box (`None`: everywhere) that match the caller's filters.
    pub async fn next<F, Fut>(&mut self, n: usize, mut fetch: F) -> Result<Vec<Near>>
    where
        F: FnMut(Option<BoundingBox>) -> Fut,
        Fut: Future<Output = Result<Vec<(Uuid, LatLon)>>>,
    {
        while self.pending.len() < n && !self.exhausted {
            self.expand(n - self.pending.len(), &mut fetch).await?;
        }
        let mut out: Vec<Near> = Vec::with_capacity(n);
        while let Some(next) = self.pending.front().copied() {
            let tie = out.last().is_some_and(|l| l.distance_km == next.distance_km);
            if out.len() >= n && !tie {
                break;
            }
            out.push(next);
            self.pending.pop_front();
        }
        if let Some(last) = out.last() {
            self.after = (last.distance_km, last.id);
        }
        Ok(out)
    }

    /// Reads the next ring, sized to hold about `wanted` more rows.
    async fn expand<F, Fut>(&mut self, wanted: usize, fetch: &mut F) -> Result<()>
    where
        F: FnMut(Option<BoundingBox>) -> Fut,
        Fut: Future<Output = Result<Vec<(Uuid, LatLon)>>>,
    {
        let mut r = if self.known_km < 0.0 {
            // Nothing lies nearer than the city (every located row is inside its box), nor
            // before where the walk starts.
            let to_city = self.center.distance_km(clamp_into(*CITY_BBOX, self.center));
            to_city.max(self.after.0) + FIRST_RING_KM
        } else {
            let growth = if self.found == 0 {
                MAX_GROWTH
            } else {
                // Rows per area so far: a ring holding `wanted` more rows at that density.
                (((self.found + wanted) as f64 / self.found as f64).sqrt() * 1.2).clamp(MIN_GROWTH, MAX_GROWTH)
            };
            self.known_km * growth
        };
        if let Some(limit) = self.radius_km
            && r >= limit
        {
            r = limit;
            self.exhausted = true;
        }
        let ring = self.center.enclosing_box(r);
        // A ring that covers the whole city (or is too wide for a box) is the last: read
        // everything once.
        let everything = !(ring.min_lon < ring.max_lon && r < 2_000.0) || covers(ring, *CITY_BBOX);
        if everything {
            self.exhausted = true;
        }
        let rows = fetch(if everything { None } else { Some(ring) }).await?;
        let within = if everything { self.radius_km.unwrap_or(f64::INFINITY) } else { r };
        let mut fresh: Vec<Near> = Vec::new();
        let mut found = 0;
        for (id, at) in rows {
            let d = self.center.distance_km(at);
            if d > within {
                continue;
            }
            found += 1;
            let near = Near { id, distance_km: d };
            if d > self.known_km && near.after(self.after) {
                fresh.push(near);
            }
        }
        fresh.sort_by(|a, b| a.distance_km.total_cmp(&b.distance_km).then(a.id.cmp(&b.id)));
        // Rows already pending lie within the old radius, so they all come before these.
        self.pending.extend(fresh);
        self.found = found;
        self.known_km = r;
        Ok(())
    }
}

/// The point of `b` nearest to `p`, by coordinates.
fn clamp_into(b: BoundingBox, p: LatLon) -> LatLon {
    LatLon { lat: p.lat.clamp(b.min_lat, b.max_lat), lon: p.lon.clamp(b.min_lon, b.max_lon) }
}

fn covers(outer: BoundingBox, inner: BoundingBox) -> bool {
    outer.min_lat <= inner.min_lat
        && outer.max_lat >= inner.max_lat
        && outer.min_lon <= inner.min_lon
        && outer.max_lon >= inner.max_lon
}

/// The ids and locations of the rows of `E` matching `cond` inside `bbox` (or anywhere): the
/// `fetch` of a walk over a table with `lat`/`lon` columns, answered from its `(lat, lon)`
/// index.
pub async fn located<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    cond: Condition,
    cols: [E::Column; 3],
    bbox: Option<BoundingBox>,
) -> Result<Vec<(Uuid, LatLon)>> {
    let rows: Vec<(Uuid, f64, f64)> = located_query::<E>(cond, cols, bbox).into_tuple().all(conn).await?;
    Ok(rows.into_iter().map(|(id, lat, lon)| (id, LatLon { lat, lon })).collect())
}

/// The query of [`located`] (public for `EXPLAIN` in tests).
pub fn located_query<E: EntityTrait>(
    cond: Condition,
    [id, lat, lon]: [E::Column; 3],
    bbox: Option<BoundingBox>,
) -> sea_orm::Select<E> {
    let mut q = E::find().select_only().columns([id, lat, lon]).filter(cond);
    if let Some(b) = bbox {
        q = q.filter(lat.between(b.min_lat, b.max_lat)).filter(lon.between(b.min_lon, b.max_lon));
    }
    q
}

/// A page of the rows of `E` matching `cond`, nearest first from `center` (ties by id),
/// within `radius_km` when given, after the page's cursor. Answers ids and distances: the
/// caller reads the page's rows whole.
pub async fn page<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    cond: Condition,
    cols: [E::Column; 3],
    center: LatLon,
    radius_km: Option<f64>,
    page: PageRequest,
) -> Result<Paged<Near>> {
    let after = page.after.map(|c| (c.distance_km.unwrap_or(f64::NEG_INFINITY), c.id));
    let mut rings = Rings::new(center, radius_km, after);
    let rows = rings.next(page.limit as usize + 1, |b| located::<E>(conn, cond.clone(), cols, b)).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |n| Cursor { distance_km: Some(n.distance_km), ..Cursor::id(n.id) }))
}

/// [`page`], with the page's rows read whole (by id, in one query) and each paired with its
/// distance.
pub async fn page_of_rows<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    cond: Condition,
    cols: [E::Column; 3],
    center: LatLon,
    radius_km: Option<f64>,
    page: PageRequest,
) -> Result<Paged<(E::Model, f64)>>
where
    E::Model: sea_orm::ModelTrait<Entity = E>,
{
    use sea_orm::ModelTrait;
    let id = cols[0];
    let near = self::page::<E>(conn, cond, cols, center, radius_km, page).await?;
    let ids: Vec<Uuid> = near.items.iter().map(|n| n.id).collect();
    let mut by_id: std::collections::HashMap<Uuid, E::Model> = std::collections::HashMap::new();
    for row in E::find().filter(id.is_in(ids)).all(conn).await? {
        if let sea_orm::Value::Uuid(Some(key)) = row.get(id) {
            by_id.insert(key, row);
        }
    }
    let items = near.items.iter().filter_map(|n| by_id.remove(&n.id).map(|r| (r, n.distance_km))).collect();
    Ok(Paged { items, next: near.next })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a grid over the city, and a fetch that answers from them as the database would.
    fn grid() -> Vec<(Uuid, LatLon)> {
        let mut out = Vec::new();
        for i in 0..40 {
            for j in 0..40 {
                let lat = 22.6 + f64::from(i) * 0.03;
                let lon = 113.0 + f64::from(j) * 0.025;
                out.push((Uuid::now_v7(), LatLon { lat, lon }));
            }
        }
        // Two rows at one spot: equal distances must never be split between batches.
        let twin = LatLon { lat: 23.1, lon: 113.3 };
        out.push((Uuid::now_v7(), twin));
        out.push((Uuid::now_v7(), twin));
        out
    }

    async fn walk(points: &[(Uuid, LatLon)], center: LatLon, radius: Option<f64>, batch: usize) -> Vec<Near> {
        let mut rings = Rings::new(center, radius, None);
        let mut all = Vec::new();
        loop {
            let got = rings
                .next(batch, |b: Option<BoundingBox>| {
                    let rows: Vec<(Uuid, LatLon)> =
                        points.iter().filter(|(_, p)| b.is_none_or(|b| b.contains(*p))).copied().collect();
                    async move { Ok(rows) }
                })
                .await
                .unwrap();
            if got.is_empty() {
                return all;
            }
            all.extend(got);
        }
    }

    fn expected(points: &[(Uuid, LatLon)], center: LatLon, radius: Option<f64>) -> Vec<Near> {
        let mut all: Vec<Near> = points
            .iter()
            .map(|(id, p)| Near { id: *id, distance_km: center.distance_km(*p) })
            .filter(|n| radius.is_none_or(|r| n.distance_km <= r))
            .collect();
        all.sort_by(|a, b| a.distance_km.total_cmp(&b.distance_km).then(a.id.cmp(&b.id)));
        all
    }

    #[tokio::test]
    async fn walks_hand_out_every_row_once_in_exact_distance_order() {
        let points = grid();
        for center in
            [LatLon { lat: 23.1, lon: 113.3 }, LatLon { lat: 22.61, lon: 113.01 }, LatLon { lat: 39.9, lon: 116.4 }]
        {
            for (radius, batch) in [(None, 1), (None, 7), (None, 500), (Some(5.0), 3), (Some(30.0), 50)] {
                let got = walk(&points, center, radius, batch).await;
                assert_eq!(got, expected(&points, center, radius), "{center:?} {radius:?} {batch}");
            }
        }
    }

    #[tokio::test]
    async fn a_walk_resumes_after_a_key() {
        let points = grid();
        let center = LatLon { lat: 23.0, lon: 113.4 };
        let all = expected(&points, center, None);
        let cut = &all[99];
        let mut rings = Rings::new(center, None, Some((cut.distance_km, cut.id)));
        let got = rings
            .next(10, |b: Option<BoundingBox>| {
                let rows: Vec<(Uuid, LatLon)> =
                    points.iter().filter(|(_, p)| b.is_none_or(|b| b.contains(*p))).copied().collect();
                async move { Ok(rows) }
            })
            .await
            .unwrap();
        assert_eq!(got[..], all[100..110]);
    }
}
