//! Accreditation (认定): versioned standards, applications checked against the standard in
//! force, the district's recommendation, expert scores, a public notice of five working days
//! open to objections, the bureau's decision, and certificates anyone can verify.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use entity::{accreditation, accreditation_standard, base, certificate_counter, objection, review, user};
use sea_orm::sea_query::{Expr, Order};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    ExprTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::begin_write;
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::enums::{AccreditationStatus, BaseStatus, ObjectionStatus, Role, Subcategory};
use crate::domain::page::{self, Cursor, PageRequest, Paged};
use crate::domain::sessions::city_offset;
use crate::domain::validate::{Validator, required_text};
use crate::domain::{Precondition, bases, holidays, write_if_version};
use crate::error::{AppError, FieldError, Result, map_constraint};

/// A public notice (公示) lasts this many working days.
pub const NOTICE_WORKING_DAYS: u32 = 5;
/// Objections from one address within an hour before 429.
pub const OBJECTIONS_PER_HOUR: u64 = 5;
/// `reviews.subject_kind` of an accreditation.
pub const REVIEW_KIND: &str = "accreditation";

mod applications;
mod certificates;
mod notice;
mod reviews;
mod standards;

pub use applications::*;
pub use certificates::*;
pub use notice::*;
pub use reviews::*;
pub use standards::*;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn local(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        city_offset().with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_working_days_skip_the_weekend() {
        let cal = holidays::WorkCalendar::default();
        // Thursday 26 Nov 2026, 10:00 → Thursday 3 Dec, 10:00.
        assert_eq!(cal.add_working_days(local(2026, 11, 26, 10), 5), local(2026, 12, 3, 10));
        // Monday → next Monday.
        assert_eq!(cal.add_working_days(local(2026, 11, 23, 9), 5), local(2026, 11, 30, 9));
        // Saturday → the Friday after.
        assert_eq!(cal.add_working_days(local(2026, 11, 28, 9), 5), local(2026, 12, 4, 9));
        // 23:00 local on a Friday is still Friday in Shanghai (15:00 UTC).
        assert_eq!(cal.add_working_days(local(2026, 11, 27, 23), 1), local(2026, 11, 30, 23));
    }

    #[test]
    fn unmet_lists_each_figure_below_its_minimum() {
        let req = Requirement {
            min_exhibition_area_m2: 1000.0,
            min_open_days: 200,
            min_free_days_for_students: 20,
            min_annual_visitors: 10000,
            min_staff: 5,
            min_interactive_exhibits: 10,
        };
        let mut f = Figures {
            exhibition_area_m2: 1000.0,
            open_days_per_year: 200,
            free_days_for_students: 20,
            annual_visitors: 10000,
            staff: 5,
            interactive_exhibits: 10,
        };
        assert!(unmet(&f, &req).is_empty(), "meeting a minimum exactly is enough");
        f.exhibition_area_m2 = 999.5;
        f.staff = 4;
        let u = unmet(&f, &req);
        assert_eq!(u.iter().map(|u| u.figure.as_str()).collect::<Vec<_>>(), ["exhibition_area_m2", "staff"]);
    }
}
