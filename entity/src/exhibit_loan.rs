//! A loan of a shareable exhibit to another base for a period (展品共享); the owner stays the
//! owner. `requested → approved | declined | cancelled → on_loan → returned`.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "exhibit_loans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub exhibit_id: Uuid,
    pub owner_base_id: Uuid,
    pub borrower_base_id: Uuid,
    /// First and last day of the loan (local days, inclusive).
    pub starts_on: Date,
    pub ends_on: Date,
    #[sea_orm(column_type = "Text")]
    pub purpose: String,
    pub status: String,
    /// The owner's conditions of an approval (insurance, handling, transport).
    #[sea_orm(column_type = "Text", nullable)]
    pub conditions: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub decline_reason: Option<String>,
    pub requested_by: Option<Uuid>,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTimeUtc>,
    pub dispatched_at: Option<DateTimeUtc>,
    pub returned_at: Option<DateTimeUtc>,
    /// `good` or `damaged`, recorded on return.
    pub return_condition: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub return_note: Option<String>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
