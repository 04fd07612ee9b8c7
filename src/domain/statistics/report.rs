//! The district report's standing of bases (accreditation, grades, signs) and the exhibit
//! sharing report: grouped counts, in the database.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::RawSql;
use crate::domain::enums::LoanStatus;
use crate::error::Result;

/// A base's standing in a district report: accreditation, the year's grade, its signs.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Standing {
    pub id: Uuid,
    pub name_zh: String,
    pub status: String,
    pub valid_until: Option<DateTime<Utc>>,
    /// The grade of its finalised evaluation of the year (the latest, if re-evaluated).
    pub grade: Option<String>,
    /// Signs standing (not rejected, replaced or removed).
    pub signs: i64,
    /// Of those, installed signs whose inspection is overdue.
    pub signs_overdue: i64,
    /// Of those, signs due for update to the current standard.
    pub signs_update_due: i64,
}

/// The standing of every base of a district, by id: one query, the counts correlated
/// subqueries over the signs' and evaluations' base indexes.
pub async fn standings(
    conn: &impl ConnectionTrait,
    code: &str,
    year: i32,
    now: DateTime<Utc>,
) -> Result<Vec<Standing>> {
    use crate::domain::enums::{EvaluationStatus, SignStatus};
    let gone = [SignStatus::Rejected, SignStatus::Replaced, SignStatus::Removed];
    let standing_signs = |sql: &mut RawSql| in_list(sql, "s.status NOT", &gone.map(|s| s.as_str()));
    let mut sql = RawSql::new(conn.get_database_backend());
    sql.push(
        "SELECT b.id AS id, b.name_zh AS name_zh, b.status AS status, b.valid_until AS valid_until, \
         (SELECT e.grade FROM evaluations e JOIN evaluation_cycles c ON c.id = e.cycle_id \
          WHERE e.base_id = b.id AND c.year = ",
    )
    .bind(year)
    .push(" AND e.status = ")
    .bind(EvaluationStatus::Finalized.as_str())
    .push(" ORDER BY e.finalized_at DESC LIMIT 1) AS grade, (SELECT COUNT(*) FROM signs s WHERE s.base_id = b.id");
    standing_signs(&mut sql);
    sql.push(") AS signs, (SELECT COUNT(*) FROM signs s WHERE s.base_id = b.id AND s.next_inspection_due < ")
        .bind(now)
        .push(" AND s.status = ")
        .bind(SignStatus::Installed.as_str())
        .push(") AS signs_overdue, (SELECT COUNT(*) FROM signs s WHERE s.base_id = b.id AND s.status = ")
        .bind(SignStatus::UpdateDue.as_str())
        .push(") AS signs_update_due FROM bases b WHERE b.district_code = ")
        .bind(code.to_string())
        .push(" ORDER BY b.id");
    Ok(Standing::find_by_statement(sql.statement()).all(conn).await?)
}

/// A unit's exhibit sharing in a year.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Sharing {
    /// Loans it sent out in the year, and the days they were (or have been so far) away.
    pub loans_lent: i64,
    pub days_lent: i64,
    /// Loans it received in the year, and their days.
    pub loans_borrowed: i64,
    pub days_borrowed: i64,
    /// Its shareable exhibits now, and those of them never sent out on a loan.
    pub shareable_exhibits: i64,
    pub never_lent: i64,
}

/// The district a caller's sharing report covers (`None`: the city): the bureau's choice, a
/// district officer's own district; nobody else reads it.
pub async fn sharing_scope(
    conn: &impl ConnectionTrait,
    actor: &crate::domain::access::Actor,
    asked: Option<String>,
) -> Result<Option<String>> {
    use crate::domain::enums::Role;
    let district = match actor.role {
        Role::Admin => asked,
        Role::DistrictOfficer => actor.district_code.clone(),
        other => {
            return Err(crate::error::AppError::forbidden(format!(
                "the sharing report is the bureau's and the districts'; not a {other}'s"
            )));
        }
    };
    if let Some(d) = &district {
        crate::domain::districts::ensure_exists(conn, d, "district").await?;
    }
    Ok(district)
}

/// The sharing report: per base (those with loans or shareable exhibits) and per district,
/// each figure a grouped query. A loan counts in the year it was dispatched; its days run
/// from the local day it left to the day it came back (or today), both counted.
pub async fn sharing(
    conn: &impl ConnectionTrait,
    year: i32,
    district: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(BTreeMap<Uuid, Sharing>, BTreeMap<String, Sharing>)> {
    let backend = conn.get_database_backend();
    // A local day's number: `prefix` + an instant + `suffix`.
    let (prefix, suffix) = match backend {
        DbBackend::Postgres => ("(CAST((", " AT TIME ZONE 'Asia/Shanghai') AS DATE) - DATE '2000-01-01')"),
        _ => ("CAST(julianday(date(", ", '+8 hours')) AS INTEGER)"),
    };
    let null_uuid = if backend == DbBackend::Postgres { "CAST(NULL AS UUID)" } else { "NULL" };
    let (from, to) = crate::domain::evaluation::year_range(year);
    let mut by_base: BTreeMap<Uuid, Sharing> = BTreeMap::new();
    let mut by_district: BTreeMap<String, Sharing> = BTreeMap::new();
    #[derive(Debug, FromQueryResult)]
    struct Row {
        base_id: Option<Uuid>,
        district_code: Option<String>,
        a: Option<i64>,
        b: Option<i64>,
    }
    let sent = [LoanStatus::OnLoan.as_str(), LoanStatus::Returned.as_str()];
    for per_district in [false, true] {
        let key = if per_district {
            format!("{null_uuid} AS base_id, b.district_code AS district_code")
        } else {
            "b.id AS base_id, CAST(NULL AS TEXT) AS district_code".to_string()
        };
        let group = if per_district { "b.district_code" } else { "b.id" };
        for (side, lent) in [("x.owner_base_id", true), ("x.borrower_base_id", false)] {
            let mut sql = RawSql::new(backend);
            sql.push(&format!("SELECT {key}, COUNT(*) AS a, CAST(SUM({prefix}COALESCE(x.returned_at, "))
                .bind(now)
                .push(&format!(
                    "){suffix} - {prefix}x.dispatched_at{suffix} + 1) AS BIGINT) AS b FROM exhibit_loans x \
                     JOIN bases b ON b.id = {side} WHERE x.dispatched_at >= "
                ))
                .bind(from)
                .push(" AND x.dispatched_at < ")
                .bind(to);
            in_list(&mut sql, "x.status", &sent);
            if let Some(d) = district {
                sql.push(" AND b.district_code = ").bind(d.to_string());
            }
            sql.push(&format!(" GROUP BY {group}"));
            for r in Row::find_by_statement(sql.statement()).all(conn).await? {
                let s = match (r.base_id, r.district_code) {
                    (Some(b), _) => by_base.entry(b).or_default(),
                    (None, Some(d)) => by_district.entry(d).or_default(),
                    _ => continue,
                };
                if lent {
                    (s.loans_lent, s.days_lent) = (r.a.unwrap_or(0), r.b.unwrap_or(0));
                } else {
                    (s.loans_borrowed, s.days_borrowed) = (r.a.unwrap_or(0), r.b.unwrap_or(0));
                }
            }
        }
        let mut sql = RawSql::new(backend);
        sql.push(&format!(
            "SELECT {key}, COUNT(*) AS a, SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM exhibit_loans x WHERE x.exhibit_id = e.id \
             AND x.dispatched_at IS NOT NULL) THEN 1 ELSE 0 END) AS b FROM exhibits e JOIN bases b ON b.id = e.base_id WHERE e.shareable"
        ));
        if let Some(d) = district {
            sql.push(" AND b.district_code = ").bind(d.to_string());
        }
        sql.push(&format!(" GROUP BY {group}"));
        for r in Row::find_by_statement(sql.statement()).all(conn).await? {
            let s = match (r.base_id, r.district_code) {
                (Some(b), _) => by_base.entry(b).or_default(),
                (None, Some(d)) => by_district.entry(d).or_default(),
                _ => continue,
            };
            (s.shareable_exhibits, s.never_lent) = (r.a.unwrap_or(0), r.b.unwrap_or(0));
        }
    }
    Ok((by_base, by_district))
}

/// A district's bases by status now (a lapsed accreditation counts as expired), by the grade of
/// their finalised evaluation of `year`, and its standing signs overdue for inspection and due
/// for update: grouped counts, in the database.
#[derive(Debug, Clone, Default)]
pub struct DistrictStanding {
    pub bases_by_status: BTreeMap<String, i64>,
    pub grades: BTreeMap<String, i64>,
    pub signs: i64,
    pub signs_overdue: i64,
    pub signs_update_due: i64,
}

pub async fn district_standing(
    conn: &impl ConnectionTrait,
    code: &str,
    year: i32,
    now: DateTime<Utc>,
) -> Result<DistrictStanding> {
    use crate::domain::enums::{BaseStatus, EvaluationStatus, SignStatus};
    #[derive(Debug, FromQueryResult)]
    struct Group {
        key: Option<String>,
        n: i64,
    }
    let backend = conn.get_database_backend();
    let mut out = DistrictStanding::default();

    let mut sql = RawSql::new(backend);
    sql.push("SELECT CASE WHEN b.status = ")
        .bind(BaseStatus::Accredited.as_str())
        .push(" AND b.valid_until <= ")
        .bind(now)
        .push(" THEN ")
        .bind(BaseStatus::Expired.as_str())
        .push(" ELSE b.status END AS key, COUNT(*) AS n FROM bases b WHERE b.district_code = ")
        .bind(code.to_string())
        .push(" GROUP BY 1");
    for g in Group::find_by_statement(sql.statement()).all(conn).await? {
        out.bases_by_status.insert(g.key.unwrap_or_default(), g.n);
    }

    let mut sql = RawSql::new(backend);
    sql.push(
        "SELECT x.grade AS key, COUNT(*) AS n FROM (SELECT (SELECT e.grade FROM evaluations e \
         JOIN evaluation_cycles c ON c.id = e.cycle_id WHERE e.base_id = b.id AND c.year = ",
    )
    .bind(year)
    .push(" AND e.status = ")
    .bind(EvaluationStatus::Finalized.as_str())
    .push(" ORDER BY e.finalized_at DESC LIMIT 1) AS grade FROM bases b WHERE b.district_code = ")
    .bind(code.to_string())
    .push(") x WHERE x.grade IS NOT NULL GROUP BY x.grade");
    for g in Group::find_by_statement(sql.statement()).all(conn).await? {
        out.grades.insert(g.key.unwrap_or_default(), g.n);
    }

    #[derive(Debug, FromQueryResult)]
    struct Signs {
        signs: Option<i64>,
        overdue: Option<i64>,
        update_due: Option<i64>,
    }
    let gone = [SignStatus::Rejected, SignStatus::Replaced, SignStatus::Removed];
    let mut sql = RawSql::new(backend);
    sql.push("SELECT COUNT(*) AS signs, SUM(CASE WHEN s.status = ")
        .bind(SignStatus::Installed.as_str())
        .push(" AND s.next_inspection_due < ")
        .bind(now)
        .push(" THEN 1 ELSE 0 END) AS overdue, SUM(CASE WHEN s.status = ")
        .bind(SignStatus::UpdateDue.as_str())
        .push(
            " THEN 1 ELSE 0 END) AS update_due FROM signs s JOIN bases b ON b.id = s.base_id WHERE b.district_code = ",
        )
        .bind(code.to_string());
    in_list(&mut sql, "s.status NOT", &gone.map(|s| s.as_str()));
    if let Some(s) = Signs::find_by_statement(sql.statement()).one(conn).await? {
        out.signs = s.signs.unwrap_or(0);
        out.signs_overdue = s.overdue.unwrap_or(0);
        out.signs_update_due = s.update_due.unwrap_or(0);
    }
    Ok(out)
}

fn in_list(sql: &mut RawSql, col: &str, values: &[&str]) {
    sql.push(" AND ").push(col).push(" IN (");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(v.to_string());
    }
    sql.push(")");
}
