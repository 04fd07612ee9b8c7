//! Exhibit sharing (展品共享): loans of a shareable exhibit to another base for a period
//! (`exhibit_loans`), and the maintenance notes a damaged return opens for the owner
//! (`exhibit_maintenance`); the index that finds shareable exhibits.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Bases {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Exhibits {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ExhibitLoans {
    Table,
    Id,
    ExhibitId,
    OwnerBaseId,
    BorrowerBaseId,
    StartsOn,
    EndsOn,
    Purpose,
    Status,
    Conditions,
    DeclineReason,
    RequestedBy,
    DecidedBy,
    DecidedAt,
    DispatchedAt,
    ReturnedAt,
    ReturnCondition,
    ReturnNote,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ExhibitMaintenance {
    Table,
    Id,
    ExhibitId,
    LoanId,
    Note,
    OpenedAt,
    ClosedAt,
    ClosedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ExhibitLoans::Table)
                .if_not_exists()
                .col(pk_uuid(ExhibitLoans::Id))
                .col(uuid(ExhibitLoans::ExhibitId))
                .col(uuid(ExhibitLoans::OwnerBaseId))
                .col(uuid(ExhibitLoans::BorrowerBaseId))
                .col(date(ExhibitLoans::StartsOn))
                .col(date(ExhibitLoans::EndsOn))
                .col(text(ExhibitLoans::Purpose))
                .col(string(ExhibitLoans::Status))
                .col(text_null(ExhibitLoans::Conditions))
                .col(text_null(ExhibitLoans::DeclineReason))
                .col(uuid_null(ExhibitLoans::RequestedBy))
                .col(uuid_null(ExhibitLoans::DecidedBy))
                .col(timestamp_with_time_zone_null(ExhibitLoans::DecidedAt))
                .col(timestamp_with_time_zone_null(ExhibitLoans::DispatchedAt))
                .col(timestamp_with_time_zone_null(ExhibitLoans::ReturnedAt))
                .col(string_null(ExhibitLoans::ReturnCondition))
                .col(text_null(ExhibitLoans::ReturnNote))
                .col(integer(ExhibitLoans::Version))
                .col(timestamp_with_time_zone(ExhibitLoans::CreatedAt))
                .col(timestamp_with_time_zone(ExhibitLoans::UpdatedAt))
                // An exhibit with a loan history is retired, not deleted: the history is the
                // sharing report's.
                .foreign_key(&mut fk(
                    "fk_exhibit_loans_exhibit",
                    (ExhibitLoans::Table, ExhibitLoans::ExhibitId),
                    (Exhibits::Table, Exhibits::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_exhibit_loans_owner",
                    (ExhibitLoans::Table, ExhibitLoans::OwnerBaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_exhibit_loans_borrower",
                    (ExhibitLoans::Table, ExhibitLoans::BorrowerBaseId),
                    (Bases::Table, Bases::Id),
                    ForeignKeyAction::Restrict,
                ))
                .foreign_key(&mut fk(
                    "fk_exhibit_loans_requested_by",
                    (ExhibitLoans::Table, ExhibitLoans::RequestedBy),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "fk_exhibit_loans_decided_by",
                    (ExhibitLoans::Table, ExhibitLoans::DecidedBy),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::SetNull,
                ))
                .check(Expr::col(ExhibitLoans::EndsOn).gte(Expr::col(ExhibitLoans::StartsOn)))
                .take(),
        )
        .await?;
        // The overlap check reads one exhibit's loans; each base's lists read its side.
        m.create_index(index("idx_exhibit_loans_exhibit", ExhibitLoans::Table, &["exhibit_id", "starts_on"])).await?;
        m.create_index(index("idx_exhibit_loans_owner", ExhibitLoans::Table, &["owner_base_id", "id"])).await?;
        m.create_index(index("idx_exhibit_loans_borrower", ExhibitLoans::Table, &["borrower_base_id", "status"]))
            .await?;

        m.create_table(
            Table::create()
                .table(ExhibitMaintenance::Table)
                .if_not_exists()
                .col(pk_uuid(ExhibitMaintenance::Id))
                .col(uuid(ExhibitMaintenance::ExhibitId))
                .col(uuid_null(ExhibitMaintenance::LoanId))
                .col(text(ExhibitMaintenance::Note))
                .col(timestamp_with_time_zone(ExhibitMaintenance::OpenedAt))
                .col(timestamp_with_time_zone_null(ExhibitMaintenance::ClosedAt))
                .col(uuid_null(ExhibitMaintenance::ClosedBy))
                .foreign_key(&mut fk(
                    "fk_exhibit_maintenance_exhibit",
                    (ExhibitMaintenance::Table, ExhibitMaintenance::ExhibitId),
                    (Exhibits::Table, Exhibits::Id),
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_exhibit_maintenance_loan",
                    (ExhibitMaintenance::Table, ExhibitMaintenance::LoanId),
                    (ExhibitLoans::Table, ExhibitLoans::Id),
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut fk(
                    "fk_exhibit_maintenance_closed_by",
                    (ExhibitMaintenance::Table, ExhibitMaintenance::ClosedBy),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::SetNull,
                ))
                .take(),
        )
        .await?;
        m.create_index(index("idx_exhibit_maintenance_exhibit", ExhibitMaintenance::Table, &["exhibit_id", "id"]))
            .await?;
        // Shareable exhibits are a small part of all: a partial index keeps their search cheap.
        m.get_connection()
            .execute_unprepared("CREATE INDEX idx_exhibits_shareable ON exhibits (base_id, id) WHERE shareable")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_exhibits_shareable").table(Exhibits::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(ExhibitMaintenance::Table).take()).await?;
        m.drop_table(Table::drop().table(ExhibitLoans::Table).take()).await
    }
}
