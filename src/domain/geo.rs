//! Locations: WGS84 points checked against the city's bounding box, great-circle distances
//! and the box that encloses a search radius. All geometry goes through the `geo` crate.

use std::sync::LazyLock;

use geo::{Destination, Distance, Haversine, Point};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

/// Latitude/longitude bounds of the city, from the bundled district data.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct BoundingBox {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lon: f64,
    pub max_lon: f64,
}

impl BoundingBox {
    pub fn contains(&self, p: LatLon) -> bool {
        (self.min_lat..=self.max_lat).contains(&p.lat) && (self.min_lon..=self.max_lon).contains(&p.lon)
    }
}

/// The city's bounding box (WGS84). Every base, school and sign must fall inside it.
pub static CITY_BBOX: LazyLock<BoundingBox> = LazyLock::new(|| {
    #[derive(Deserialize)]
    struct City {
        bbox_wgs84: BoundingBox,
    }
    #[derive(Deserialize)]
    struct File {
        city: City,
    }
    let file: File = serde_json::from_str(migration::DISTRICTS_JSON).expect("bundled district data is valid");
    file.city.bbox_wgs84
});

/// A WGS84 point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"lat": 23.1291, "lon": 113.2644}))]
pub struct LatLon {
    /// Latitude in degrees (WGS84), inside the city's bounding box.
    #[schema(minimum = 22.5, maximum = 23.95)]
    pub lat: f64,
    /// Longitude in degrees (WGS84), inside the city's bounding box.
    #[schema(minimum = 112.9, maximum = 114.1)]
    pub lon: f64,
}

impl LatLon {
    /// Parses a point that must lie inside the city, naming `field` in any error.
    pub fn parse_in_city(lat: f64, lon: f64, field: &str) -> Result<Self, Vec<FieldError>> {
        let bbox = *CITY_BBOX;
        let mut errors = Vec::new();
        if !lat.is_finite() || !(bbox.min_lat..=bbox.max_lat).contains(&lat) {
            errors.push(FieldError::new(
                format!("{field}.lat"),
                format!("must be between {} and {} (the city's bounding box)", bbox.min_lat, bbox.max_lat),
            ));
        }
        if !lon.is_finite() || !(bbox.min_lon..=bbox.max_lon).contains(&lon) {
            errors.push(FieldError::new(
                format!("{field}.lon"),
                format!("must be between {} and {} (the city's bounding box)", bbox.min_lon, bbox.max_lon),
            ));
        }
        if errors.is_empty() { Ok(Self { lat, lon }) } else { Err(errors) }
    }

    /// Parses `LAT,LON` as used by `near=`; any point on Earth is accepted as a search centre.
    pub fn parse_pair(s: &str) -> Result<Self, String> {
        let msg = || "must be LAT,LON in decimal degrees, e.g. 23.1291,113.2644".to_string();
        let (a, b) = s.split_once(',').ok_or_else(msg)?;
        let lat: f64 = a.trim().parse().map_err(|_| msg())?;
        let lon: f64 = b.trim().parse().map_err(|_| msg())?;
        if !lat.is_finite() || !lon.is_finite() || !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err("latitude must be within ±90 and longitude within ±180".into());
        }
        Ok(Self { lat, lon })
    }

    fn point(self) -> Point<f64> {
        Point::new(self.lon, self.lat)
    }

    /// Great-circle distance in kilometres.
    pub fn distance_km(self, other: LatLon) -> f64 {
        Haversine.distance(self.point(), other.point()) / 1000.0
    }

    /// A box that encloses every point within `radius_km`, padded so that a cheap
    /// database pre-filter never drops a point the exact distance check would keep.
    pub fn enclosing_box(self, radius_km: f64) -> BoundingBox {
        let meters = radius_km * 1000.0 * 1.05 + 10.0;
        let north = Haversine.destination(self.point(), 0.0, meters);
        let south = Haversine.destination(self.point(), 180.0, meters);
        // The widest longitude of a circle lies slightly poleward of its centre; measuring
        // east/west from the poleward edge covers it.
        let edge_lat = if self.lat >= 0.0 { north } else { south };
        let east = Haversine.destination(Point::new(self.lon, edge_lat.y()), 90.0, meters);
        let west = Haversine.destination(Point::new(self.lon, edge_lat.y()), 270.0, meters);
        BoundingBox {
            min_lat: south.y().min(self.lat),
            max_lat: north.y().max(self.lat),
            min_lon: west.x().min(self.lon),
            max_lon: east.x().max(self.lon),
        }
    }
}

/// Rounds a distance for display (metre precision).
pub fn round_km(km: f64) -> f64 {
    (km * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIANHE: LatLon = LatLon { lat: 23.1382, lon: 113.3299 };
    const YUEXIU: LatLon = LatLon { lat: 23.1283, lon: 113.2754 };

    #[test]
    fn distance_between_district_seats_is_plausible() {
        let d = TIANHE.distance_km(YUEXIU);
        assert!((5.5..5.8).contains(&d), "{d}");
    }

    #[test]
    fn enclosing_box_contains_points_at_the_radius() {
        for bearing in (0..360).step_by(15) {
            let p = Haversine.destination(TIANHE.point(), bearing as f64, 20_000.0);
            let b = TIANHE.enclosing_box(20.0);
            assert!(b.contains(LatLon { lat: p.y(), lon: p.x() }), "bearing {bearing}");
        }
    }

    #[test]
    fn points_outside_the_city_are_rejected_by_field() {
        let errs = LatLon::parse_in_city(39.9, 116.4, "location").unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["location.lat", "location.lon"]);
        assert!(LatLon::parse_in_city(23.13, 113.26, "location").is_ok());
    }

    #[test]
    fn near_pairs_parse_and_reject_garbage() {
        assert_eq!(LatLon::parse_pair("23.1,113.2"), Ok(LatLon { lat: 23.1, lon: 113.2 }));
        assert!(LatLon::parse_pair("23.1").is_err());
        assert!(LatLon::parse_pair("abc,113").is_err());
        assert!(LatLon::parse_pair("91,0").is_err());
        assert!(LatLon::parse_pair("NaN,0").is_err());
    }
}
