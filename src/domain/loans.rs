//! Exhibit sharing (展品共享): a base's operator borrows a shareable exhibit of another base for
//! a period; the owner's operator approves (with conditions) or declines, dispatches it and
//! records its return with a condition report. The owner stays the owner.
//!
//! Every transition of a loan first locks its exhibit's row, so the loans of one exhibit change
//! one at a time: the overlap rule (no two approved or lent loans of an exhibit share a day) is
//! checked against what is committed, under any number of clients and kepu instances.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{base, exhibit, exhibit_loan, exhibit_maintenance};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::db::{begin_read, begin_write};
use crate::domain::access::{Action, Actor, authorize};
use crate::domain::audit::{self, Change};
use crate::domain::bases;
use crate::domain::enums::{ExhibitStatus, LoanStatus, ReturnCondition, Role};
use crate::domain::notifications::{self, Recipient};
use crate::domain::page::{Cursor, PageRequest, Paged};
use crate::domain::sessions::city_offset;
use crate::error::{AppError, Result};

/// The longest loan, in days: a longer one is a transfer, not a loan.
pub const MAX_LOAN_DAYS: i64 = 366;

/// The loans that hold some of the days `from..=to` (today being `today`): an approved loan
/// its own days; a loan out now every day until its last (it may have left early) and, once
/// overdue, every day until it is back.
pub fn holding(from: NaiveDate, to: NaiveDate, today: NaiveDate) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(exhibit_loan::Column::Status.eq(LoanStatus::Approved.as_str()))
                .add(exhibit_loan::Column::StartsOn.lte(to))
                .add(exhibit_loan::Column::EndsOn.gte(from)),
        )
        .add(Condition::all().add(exhibit_loan::Column::Status.eq(LoanStatus::OnLoan.as_str())).add(
            Condition::any().add(exhibit_loan::Column::EndsOn.gte(from)).add(exhibit_loan::Column::EndsOn.lt(today)),
        ))
}

/// A request to borrow an exhibit, validated.
#[derive(Debug, Clone)]
pub struct LoanRequest {
    pub borrower_base_id: Uuid,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub purpose: String,
}

/// A loan with the names the API shows beside it.
#[derive(Debug, Clone)]
pub struct LoanRecord {
    pub loan: exhibit_loan::Model,
    pub exhibit_name: String,
    pub owner_base_name: String,
    pub borrower_base_name: String,
}

/// What a transition of a loan does.
#[derive(Debug, Clone)]
pub enum LoanStep {
    Approve { conditions: Option<String> },
    Decline { reason: Option<String> },
    Cancel,
    Dispatch,
    Return { condition: ReturnCondition, note: Option<String> },
}

impl LoanStep {
    fn action(&self) -> &'static str {
        match self {
            LoanStep::Approve { .. } => "exhibit_loan.approve",
            LoanStep::Decline { .. } => "exhibit_loan.decline",
            LoanStep::Cancel => "exhibit_loan.cancel",
            LoanStep::Dispatch => "exhibit_loan.dispatch",
            LoanStep::Return { .. } => "exhibit_loan.return",
        }
    }

    /// The states the step starts from, and the one it ends in.
    fn moves(&self) -> (&'static [LoanStatus], LoanStatus) {
        match self {
            LoanStep::Approve { .. } => (&[LoanStatus::Requested], LoanStatus::Approved),
            LoanStep::Decline { .. } => (&[LoanStatus::Requested], LoanStatus::Declined),
            LoanStep::Cancel => (&[LoanStatus::Requested, LoanStatus::Approved], LoanStatus::Cancelled),
            LoanStep::Dispatch => (&[LoanStatus::Approved], LoanStatus::OnLoan),
            LoanStep::Return { .. } => (&[LoanStatus::OnLoan], LoanStatus::Returned),
        }
    }
}

/// The local (Asia/Shanghai) day of an instant.
pub fn local_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&city_offset()).date_naive()
}

/// Checks a loan's period: not in the past, in order, at most [`MAX_LOAN_DAYS`].
pub fn check_period(starts_on: NaiveDate, ends_on: NaiveDate, today: NaiveDate) -> Result<()> {
    if starts_on < today {
        return Err(AppError::field("starts_on", format!("must be today ({today}) or later")));
    }
    if ends_on < starts_on {
        return Err(AppError::field("ends_on", "must be on or after starts_on"));
    }
    if (ends_on - starts_on).num_days() + 1 > MAX_LOAN_DAYS {
        return Err(AppError::field("ends_on", format!("a loan lasts at most {MAX_LOAN_DAYS} days")));
    }
    Ok(())
}

/// Whether an exhibit in this state may be promised or sent out.
fn check_lendable(e: &exhibit::Model) -> Result<()> {
    if !e.shareable {
        return Err(AppError::conflict_rule("not-shareable", format!("exhibit {} is not shareable", e.id)));
    }
    match ExhibitStatus::from_db(&e.status) {
        s @ (ExhibitStatus::Maintenance | ExhibitStatus::Retired) => Err(AppError::conflict_rule(
            "exhibit-unavailable",
            format!("exhibit {} is in {s} and cannot be lent", e.id),
        )),
        _ => Ok(()),
    }
}

/// The exhibit's row, locked until the transaction ends (PostgreSQL; SQLite's write
/// transaction holds the whole database already).
async fn lock_exhibit(conn: &impl ConnectionTrait, id: Uuid) -> Result<exhibit::Model> {
    exhibit::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no exhibit with id {id}")))
}

/// 409 when an approved or lent loan of the exhibit (other than `except`) shares a day with
/// the period.
async fn check_no_overlap(
    conn: &impl ConnectionTrait,
    exhibit_id: Uuid,
    (starts_on, ends_on): (NaiveDate, NaiveDate),
    today: NaiveDate,
    except: Option<Uuid>,
) -> Result<()> {
    let mut q = exhibit_loan::Entity::find()
        .filter(exhibit_loan::Column::ExhibitId.eq(exhibit_id))
        .filter(holding(starts_on, ends_on, today));
    if let Some(id) = except {
        q = q.filter(exhibit_loan::Column::Id.ne(id));
    }
    if let Some(other) = q.order_by_asc(exhibit_loan::Column::StartsOn).one(conn).await? {
        return Err(AppError::conflict_rule(
            "loan-overlap",
            format!(
                "the exhibit is {} to another base from {} to {}; choose days outside that period",
                if other.status == LoanStatus::OnLoan.as_str() { "on loan" } else { "promised" },
                other.starts_on,
                other.ends_on
            ),
        ));
    }
    Ok(())
}

fn not_found(id: Uuid) -> AppError {
    AppError::not_found(format!("no exhibit loan with id {id}"))
}

async fn get_row(conn: &impl ConnectionTrait, id: Uuid) -> Result<exhibit_loan::Model> {
    exhibit_loan::Entity::find_by_id(id).one(conn).await?.ok_or_else(|| not_found(id))
}

/// The districts of a loan's two bases.
async fn districts_of(conn: &impl ConnectionTrait, loan: &exhibit_loan::Model) -> Result<Vec<String>> {
    let rows: Vec<String> = base::Entity::find()
        .select_only()
        .column(base::Column::DistrictCode)
        .filter(base::Column::Id.is_in([loan.owner_base_id, loan.borrower_base_id]))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows)
}

/// Who sees a loan: the bureau, the operators of either base, the officers of either base's
/// district. Others get a 404, as if it did not exist.
async fn ensure_visible(conn: &impl ConnectionTrait, actor: &Actor, loan: &exhibit_loan::Model) -> Result<()> {
    let sees = match actor.role {
        Role::Admin => true,
        Role::Operator => actor.operates(loan.owner_base_id) || actor.operates(loan.borrower_base_id),
        Role::DistrictOfficer => {
            let mine = actor.district_code.as_deref();
            districts_of(conn, loan).await?.iter().any(|d| Some(d.as_str()) == mine)
        }
        _ => false,
    };
    if sees { Ok(()) } else { Err(not_found(loan.id)) }
}

/// Requests `exhibit_id` for the borrowing base.
#[tracing::instrument(skip(db, actor, req), err)]
pub async fn request(
    db: &DatabaseConnection,
    actor: &Actor,
    exhibit_id: Uuid,
    req: LoanRequest,
    now: DateTime<Utc>,
) -> Result<LoanRecord> {
    authorize(actor, Action::ShareExhibits { base_id: req.borrower_base_id })?;
    check_period(req.starts_on, req.ends_on, local_day(now))?;
    let txn = begin_write(db).await?;
    if base::Entity::find_by_id(req.borrower_base_id).one(&txn).await?.is_none() {
        return Err(AppError::field("borrower_base_id", "no base with this id"));
    }
    let e = lock_exhibit(&txn, exhibit_id).await?;
    if e.base_id == req.borrower_base_id {
        return Err(AppError::field(
            "borrower_base_id",
            "is the exhibit's own base: a base does not borrow from itself",
        ));
    }
    check_lendable(&e)?;
    check_no_overlap(&txn, e.id, (req.starts_on, req.ends_on), local_day(now), None).await?;
    let id = Uuid::now_v7();
    let row = exhibit_loan::ActiveModel {
        id: Set(id),
        exhibit_id: Set(e.id),
        owner_base_id: Set(e.base_id),
        borrower_base_id: Set(req.borrower_base_id),
        starts_on: Set(req.starts_on),
        ends_on: Set(req.ends_on),
        purpose: Set(req.purpose),
        status: Set(LoanStatus::Requested.as_str().into()),
        conditions: Set(None),
        decline_reason: Set(None),
        requested_by: Set(actor.account_id()),
        decided_by: Set(None),
        decided_at: Set(None),
        dispatched_at: Set(None),
        returned_at: Set(None),
        return_condition: Set(None),
        return_note: Set(None),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    };
    exhibit_loan::Entity::insert(row).exec_without_returning(&txn).await?;
    let loan = get_row(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::created("exhibit_loan", id, &loan)).await?;
    let record = record_of(&txn, loan).await?;
    notifications::send_to(
        &txn,
        Recipient::Base(record.loan.owner_base_id),
        "loan_requested",
        format!(
            "{} asks to borrow {} from {} to {}: {}",
            record.borrower_base_name,
            record.exhibit_name,
            record.loan.starts_on,
            record.loan.ends_on,
            record.loan.purpose
        ),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(record)
}

/// Moves a loan one step on, as its workflow allows, with what the step does to the exhibit.
#[tracing::instrument(skip(db, actor), err)]
pub async fn step(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    step: LoanStep,
    now: DateTime<Utc>,
) -> Result<LoanRecord> {
    let txn = begin_write(db).await?;
    let found = get_row(&txn, id).await?;
    ensure_visible(&txn, actor, &found).await?;
    // Lock the exhibit, then read the loan again: every writer of the exhibit's loans holds
    // that lock, so what is read now stays true until commit.
    let e = lock_exhibit(&txn, found.exhibit_id).await?;
    let before = get_row(&txn, id).await?;
    let acting_for = match step {
        // Either side may withdraw before the exhibit leaves.
        LoanStep::Cancel if actor.operates(before.borrower_base_id) => before.borrower_base_id,
        _ => before.owner_base_id,
    };
    authorize(actor, Action::ShareExhibits { base_id: acting_for })?;
    let (from, to) = step.moves();
    let status = LoanStatus::from_db(&before.status);
    if !from.contains(&status) {
        return Err(AppError::conflict_rule(
            "loan-state",
            format!(
                "the loan is {status}; {} needs it {}",
                step.action().trim_start_matches("exhibit_loan."),
                from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
            ),
        ));
    }

    let mut row: exhibit_loan::ActiveModel = before.clone().into();
    row.status = Set(to.as_str().into());
    row.version = Set(before.version + 1);
    row.updated_at = Set(now);
    let mut exhibit_status = None;
    let mut maintenance_note = None;
    match &step {
        LoanStep::Approve { conditions } => {
            check_lendable(&e)?;
            check_no_overlap(&txn, e.id, (before.starts_on, before.ends_on), local_day(now), Some(id)).await?;
            if before.ends_on < local_day(now) {
                return Err(AppError::conflict_rule("loan-period-over", "the loan's period is over; decline it"));
            }
            row.conditions = Set(conditions.clone());
            row.decided_by = Set(actor.account_id());
            row.decided_at = Set(Some(now));
        }
        LoanStep::Decline { reason } => {
            row.decline_reason = Set(reason.clone());
            row.decided_by = Set(actor.account_id());
            row.decided_at = Set(Some(now));
        }
        LoanStep::Cancel => {}
        LoanStep::Dispatch => {
            check_lendable(&e)?;
            if e.status == ExhibitStatus::OnLoan.as_str() {
                return Err(AppError::conflict_rule(
                    "exhibit-out",
                    "the exhibit is still out on an earlier loan; record that loan's return first",
                ));
            }
            if before.ends_on < local_day(now) {
                return Err(AppError::conflict_rule("loan-period-over", "the loan's period is over; cancel it"));
            }
            row.dispatched_at = Set(Some(now));
            exhibit_status = Some(ExhibitStatus::OnLoan);
        }
        LoanStep::Return { condition, note } => {
            row.returned_at = Set(Some(now));
            row.return_condition = Set(Some(condition.as_str().into()));
            row.return_note = Set(note.clone());
            exhibit_status = Some(match condition {
                ReturnCondition::Good => ExhibitStatus::OnDisplay,
                ReturnCondition::Damaged => {
                    maintenance_note = Some(note.clone().unwrap_or_else(|| "returned damaged from a loan".into()));
                    ExhibitStatus::Maintenance
                }
            });
        }
    }
    let res = exhibit_loan::Entity::update_many()
        .set(row)
        .filter(exhibit_loan::Column::Id.eq(id))
        .filter(exhibit_loan::Column::Version.eq(before.version))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(AppError::Conflict("the loan changed concurrently; read it again".into()));
    }
    if let Some(s) = exhibit_status {
        set_exhibit_status(&txn, actor, &e, s, now).await?;
    }
    if let Some(note) = maintenance_note {
        let m = exhibit_maintenance::ActiveModel {
            id: Set(Uuid::now_v7()),
            exhibit_id: Set(e.id),
            loan_id: Set(Some(id)),
            note: Set(note),
            opened_at: Set(now),
            closed_at: Set(None),
            closed_by: Set(None),
        };
        exhibit_maintenance::Entity::insert(m).exec_without_returning(&txn).await?;
    }
    let after = get_row(&txn, id).await?;
    audit::record(&txn, Some(actor), now, Change::updated(step.action(), "exhibit_loan", id, &before, &after)).await?;
    let record = record_of(&txn, after).await?;
    tell_sides(&txn, &record, &step, now).await?;
    if let LoanStep::Approve { .. } = step {
        decline_overlapping_requests(&txn, actor, &record, now).await?;
    }
    txn.commit().await?;
    Ok(record)
}

/// An exhibit's status as a loan sets it, versioned and audited like an operator's edit.
async fn set_exhibit_status(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    e: &exhibit::Model,
    status: ExhibitStatus,
    now: DateTime<Utc>,
) -> Result<()> {
    exhibit::Entity::update_many()
        .col_expr(exhibit::Column::Status, Expr::val(status.as_str()))
        .col_expr(exhibit::Column::Version, Expr::val(e.version + 1))
        .col_expr(exhibit::Column::UpdatedAt, Expr::val(now))
        .filter(exhibit::Column::Id.eq(e.id))
        .exec(conn)
        .await?;
    let after = exhibit::Entity::find_by_id(e.id).one(conn).await?;
    audit::record(conn, Some(actor), now, Change::updated("exhibit.loan_status", "exhibit", e.id, e, &after)).await
}

/// Once a loan is approved, the other requests for overlapping days cannot be: they are
/// declined at once (and their borrowers told) rather than left waiting for a 409.
async fn decline_overlapping_requests(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    approved: &LoanRecord,
    now: DateTime<Utc>,
) -> Result<()> {
    let l = &approved.loan;
    let others = exhibit_loan::Entity::find()
        .filter(exhibit_loan::Column::ExhibitId.eq(l.exhibit_id))
        .filter(exhibit_loan::Column::Status.eq(LoanStatus::Requested.as_str()))
        .filter(exhibit_loan::Column::StartsOn.lte(l.ends_on))
        .filter(exhibit_loan::Column::EndsOn.gte(l.starts_on))
        .all(conn)
        .await?;
    for before in others {
        let reason = format!("the exhibit is lent to another base from {} to {}", l.starts_on, l.ends_on);
        let mut row: exhibit_loan::ActiveModel = before.clone().into();
        row.status = Set(LoanStatus::Declined.as_str().into());
        row.decline_reason = Set(Some(reason.clone()));
        row.decided_by = Set(actor.account_id());
        row.decided_at = Set(Some(now));
        row.version = Set(before.version + 1);
        row.updated_at = Set(now);
        let after = exhibit_loan::Entity::update(row).exec(conn).await?;
        audit::record(
            conn,
            Some(actor),
            now,
            Change::updated("exhibit_loan.decline", "exhibit_loan", after.id, &before, &after),
        )
        .await?;
        notifications::send_to(
            conn,
            Recipient::Base(after.borrower_base_id),
            "loan_declined",
            format!("{} cannot be lent to you: {reason}", approved.exhibit_name),
            now,
        )
        .await?;
    }
    Ok(())
}

/// Tells the side that did not act what happened (both sides of a dispatch or a return).
async fn tell_sides(conn: &impl ConnectionTrait, r: &LoanRecord, step: &LoanStep, now: DateTime<Utc>) -> Result<()> {
    let l = &r.loan;
    let (owner, borrower) = (Recipient::Base(l.owner_base_id), Recipient::Base(l.borrower_base_id));
    let name = &r.exhibit_name;
    let sends: Vec<(Recipient, &str, String)> = match step {
        LoanStep::Approve { conditions } => vec![(
            borrower,
            "loan_approved",
            format!(
                "{} lends you {name} from {} to {}{}",
                r.owner_base_name,
                l.starts_on,
                l.ends_on,
                conditions.as_deref().map(|c| format!("; conditions: {c}")).unwrap_or_default()
            ),
        )],
        LoanStep::Decline { reason } => vec![(
            borrower,
            "loan_declined",
            format!(
                "{} declined to lend {name}{}",
                r.owner_base_name,
                reason.as_deref().map(|c| format!(": {c}")).unwrap_or_default()
            ),
        )],
        LoanStep::Cancel => {
            let msg = format!(
                "the loan of {name} to {} ({} to {}) is cancelled",
                r.borrower_base_name, l.starts_on, l.ends_on
            );
            vec![(owner, "loan_cancelled", msg.clone()), (borrower, "loan_cancelled", msg)]
        }
        LoanStep::Dispatch => {
            let msg =
                format!("{name} left {} for {}, due back by {}", r.owner_base_name, r.borrower_base_name, l.ends_on);
            vec![(owner, "loan_dispatched", msg.clone()), (borrower, "loan_dispatched", msg)]
        }
        LoanStep::Return { condition, .. } => {
            let msg = match condition {
                ReturnCondition::Good => format!("{name} is back at {} in good condition", r.owner_base_name),
                ReturnCondition::Damaged => {
                    format!("{name} came back damaged from {}: a maintenance note is open", r.borrower_base_name)
                }
            };
            vec![(owner, "loan_returned", msg.clone()), (borrower, "loan_returned", msg)]
        }
    };
    for (to, kind, msg) in sends {
        notifications::send_to(conn, to, kind, msg, now).await?;
    }
    Ok(())
}

/// A loan with its names.
async fn record_of(conn: &impl ConnectionTrait, loan: exhibit_loan::Model) -> Result<LoanRecord> {
    records(conn, vec![loan]).await?.pop().ok_or_else(|| AppError::Internal(anyhow::anyhow!("loan vanished")))
}

/// Loans with their exhibits' and bases' names, read in one query each.
async fn records(conn: &impl ConnectionTrait, loans: Vec<exhibit_loan::Model>) -> Result<Vec<LoanRecord>> {
    let exhibit_ids: Vec<Uuid> = loans.iter().map(|l| l.exhibit_id).collect();
    let base_ids: Vec<Uuid> = loans.iter().flat_map(|l| [l.owner_base_id, l.borrower_base_id]).collect();
    let exhibits: HashMap<Uuid, String> = if exhibit_ids.is_empty() {
        HashMap::new()
    } else {
        exhibit::Entity::find()
            .select_only()
            .columns([exhibit::Column::Id, exhibit::Column::Name])
            .filter(exhibit::Column::Id.is_in(exhibit_ids))
            .into_tuple::<(Uuid, String)>()
            .all(conn)
            .await?
            .into_iter()
            .collect()
    };
    let bases = bases::names(conn, base_ids, base::Column::NameZh).await?;
    let name = |m: &HashMap<Uuid, String>, id: Uuid| m.get(&id).cloned().unwrap_or_default();
    Ok(loans
        .into_iter()
        .map(|loan| LoanRecord {
            exhibit_name: name(&exhibits, loan.exhibit_id),
            owner_base_name: name(&bases, loan.owner_base_id),
            borrower_base_name: name(&bases, loan.borrower_base_id),
            loan,
        })
        .collect())
}

/// One loan, for those who may see it.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<LoanRecord> {
    let loan = get_row(db, id).await?;
    ensure_visible(db, actor, &loan).await?;
    record_of(db, loan).await
}

/// Filters of the loan list.
#[derive(Debug, Default, Clone)]
pub struct LoanFilter {
    /// Loans where this base lends or borrows.
    pub base_id: Option<Uuid>,
    pub exhibit_id: Option<Uuid>,
    pub status: Option<LoanStatus>,
}

/// The loans the actor may see, newest last (by id), filtered.
pub async fn list(
    db: &DatabaseConnection,
    actor: &Actor,
    filter: &LoanFilter,
    page: PageRequest,
) -> Result<Paged<LoanRecord>> {
    let mut cond = Condition::all();
    match actor.role {
        Role::Admin => {}
        Role::Operator => {
            let mine = actor.base_ids.clone();
            cond = cond.add(
                Condition::any()
                    .add(exhibit_loan::Column::OwnerBaseId.is_in(mine.clone()))
                    .add(exhibit_loan::Column::BorrowerBaseId.is_in(mine)),
            );
        }
        Role::DistrictOfficer => {
            let code = actor.district_code.clone().unwrap_or_default();
            cond = cond.add(
                Condition::any()
                    .add(exhibit_loan::Column::OwnerBaseId.in_subquery(crate::domain::bases::in_district(&code)))
                    .add(exhibit_loan::Column::BorrowerBaseId.in_subquery(crate::domain::bases::in_district(&code))),
            );
        }
        other => return Err(AppError::forbidden(format!("a {other} account sees no exhibit loans"))),
    }
    if let Some(b) = filter.base_id {
        cond = cond.add(
            Condition::any()
                .add(exhibit_loan::Column::OwnerBaseId.eq(b))
                .add(exhibit_loan::Column::BorrowerBaseId.eq(b)),
        );
    }
    if let Some(e) = filter.exhibit_id {
        cond = cond.add(exhibit_loan::Column::ExhibitId.eq(e));
    }
    if let Some(s) = filter.status {
        cond = cond.add(exhibit_loan::Column::Status.eq(s.as_str()));
    }
    if let Some(after) = page.after {
        cond = cond.add(exhibit_loan::Column::Id.gt(after.id));
    }
    let txn = begin_read(db).await?;
    let rows = exhibit_loan::Entity::find()
        .filter(cond)
        .order_by_asc(exhibit_loan::Column::Id)
        .limit(page.limit + 1)
        .all(&txn)
        .await?;
    let paged = Paged::from_overfetch(rows, page.limit, |l| Cursor::id(l.id));
    let items = records(&txn, paged.items).await?;
    txn.commit().await?;
    Ok(Paged { items, next: paged.next })
}

/// The loan an exhibit is out on now, as its lists show it ("on loan from …").
#[derive(Debug, Clone)]
pub struct OutOnLoan {
    pub loan_id: Uuid,
    pub owner_base_id: Uuid,
    pub owner_base_name: String,
    pub borrower_base_id: Uuid,
    pub borrower_base_name: String,
    pub ends_on: NaiveDate,
}

/// The current loans of those of `exhibits` that are out, by exhibit id (one query each for
/// the loans and the names).
pub async fn out_on_loan(conn: &impl ConnectionTrait, exhibits: &[exhibit::Model]) -> Result<HashMap<Uuid, OutOnLoan>> {
    let out: Vec<Uuid> = exhibits.iter().filter(|e| e.status == ExhibitStatus::OnLoan.as_str()).map(|e| e.id).collect();
    if out.is_empty() {
        return Ok(HashMap::new());
    }
    let loans = exhibit_loan::Entity::find()
        .filter(exhibit_loan::Column::ExhibitId.is_in(out))
        .filter(exhibit_loan::Column::Status.eq(LoanStatus::OnLoan.as_str()))
        .all(conn)
        .await?;
    let names =
        bases::names(conn, loans.iter().flat_map(|l| [l.owner_base_id, l.borrower_base_id]), base::Column::NameZh)
            .await?;
    let name = |id: Uuid| names.get(&id).cloned().unwrap_or_default();
    Ok(loans
        .into_iter()
        .map(|l| {
            (
                l.exhibit_id,
                OutOnLoan {
                    loan_id: l.id,
                    owner_base_id: l.owner_base_id,
                    owner_base_name: name(l.owner_base_id),
                    borrower_base_id: l.borrower_base_id,
                    borrower_base_name: name(l.borrower_base_id),
                    ends_on: l.ends_on,
                },
            )
        })
        .collect())
}

/// The exhibits out on loan to `base_id` now, as a subquery of exhibit ids.
pub fn borrowed_by(base_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(exhibit_loan::Column::ExhibitId)
        .from(exhibit_loan::Entity)
        .and_where(exhibit_loan::Column::BorrowerBaseId.eq(base_id))
        .and_where(exhibit_loan::Column::Status.eq(LoanStatus::OnLoan.as_str()))
        .take()
}

/// Exhibits with a loan [`holding`] a day of `from..=to`, as a subquery.
pub fn held_between(from: NaiveDate, to: NaiveDate, today: NaiveDate) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(exhibit_loan::Column::ExhibitId)
        .from(exhibit_loan::Entity)
        .cond_where(holding(from, to, today))
        .take()
}

/// Whether any loan of the exhibit was ever asked for (the exhibit's row is locked first, so
/// that no request slips in before a deletion).
pub async fn has_loans(conn: &impl ConnectionTrait, exhibit_id: Uuid) -> Result<bool> {
    lock_exhibit(conn, exhibit_id).await?;
    Ok(exhibit_loan::Entity::find().filter(exhibit_loan::Column::ExhibitId.eq(exhibit_id)).one(conn).await?.is_some())
}

/// Exhibits that have ever left on a loan, as a subquery.
pub fn ever_lent() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(exhibit_loan::Column::ExhibitId)
        .from(exhibit_loan::Entity)
        .and_where(exhibit_loan::Column::DispatchedAt.is_not_null())
        .take()
}

/// The open maintenance notes of an exhibit are closed when its owner puts it back on display.
pub async fn close_maintenance(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    exhibit_id: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    exhibit_maintenance::Entity::update_many()
        .col_expr(exhibit_maintenance::Column::ClosedAt, Expr::val(now))
        .col_expr(exhibit_maintenance::Column::ClosedBy, Expr::val(actor.account_id()))
        .filter(exhibit_maintenance::Column::ExhibitId.eq(exhibit_id))
        .filter(exhibit_maintenance::Column::ClosedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// An exhibit's maintenance notes, newest last: for its base's operators.
pub async fn maintenance_notes(
    db: &DatabaseConnection,
    actor: &Actor,
    exhibit_id: Uuid,
    page: PageRequest,
) -> Result<Paged<exhibit_maintenance::Model>> {
    let e = crate::domain::exhibits::get(db, exhibit_id).await?;
    authorize(actor, Action::EditExhibits { base_id: e.base_id })?;
    let mut q = exhibit_maintenance::Entity::find().filter(exhibit_maintenance::Column::ExhibitId.eq(exhibit_id));
    if let Some(after) = page.after {
        q = q.filter(exhibit_maintenance::Column::Id.gt(after.id));
    }
    let rows = q.order_by_asc(exhibit_maintenance::Column::Id).limit(page.limit + 1).all(db).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |m| Cursor::id(m.id)))
}
