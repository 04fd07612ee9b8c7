//! Addresses each account logged in from lately (`login_addresses`), which may still try to
//! log in while the account's failures for the hour are spent; and indexes for counting a
//! username's failures from one address and for forgetting old failures.

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
enum LoginAddresses {
    Table,
    UserId,
    ClientIp,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LoginAddresses::Table)
                .col(uuid(LoginAddresses::UserId))
                .col(string(LoginAddresses::ClientIp))
                .col(timestamp_with_time_zone(LoginAddresses::LastLoginAt))
                .primary_key(Index::create().col(LoginAddresses::UserId).col(LoginAddresses::ClientIp))
                .foreign_key(&mut fk(
                    "fk_login_addresses_user",
                    (LoginAddresses::Table, LoginAddresses::UserId),
                    (Users::Table, Users::Id),
                    ForeignKeyAction::Cascade,
                ))
                .take(),
        )
        .await?;
        m.create_index(index(
            "idx_login_failures_username_client",
            LoginFailures::Table,
            &["username", "client_ip", "at"],
        ))
        .await?;
        m.create_index(index("idx_login_failures_at", LoginFailures::Table, &["at"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_login_failures_at").table(LoginFailures::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_login_failures_username_client").table(LoginFailures::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(LoginAddresses::Table).take()).await
    }
}
