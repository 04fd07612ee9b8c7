//! Indexes that let lists walk in their own order and stop at the page: sessions by
//! (start, id) and per base by (start, id), the audit log per entity kind by id, and signs by
//! place (for nearest-first walks, as bases and schools have).

use sea_orm_migration::prelude::*;

use crate::helpers::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    Table,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
}

#[derive(DeriveIden)]
enum Signs {
    Table,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index("idx_sessions_start_id", Sessions::Table, &["starts_at", "id"])).await?;
        m.create_index(index("idx_sessions_base_start_id", Sessions::Table, &["base_id", "starts_at", "id"])).await?;
        m.drop_index(Index::drop().name("idx_sessions_start").table(Sessions::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_sessions_base_start").table(Sessions::Table).to_owned()).await?;
        m.create_index(index("idx_signs_lat_lon", Signs::Table, &["lat", "lon"])).await?;
        m.create_index(index("idx_audit_log_entity_kind", AuditLog::Table, &["entity", "id"])).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_audit_log_entity_kind").table(AuditLog::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_signs_lat_lon").table(Signs::Table).to_owned()).await?;
        m.create_index(index("idx_sessions_base_start", Sessions::Table, &["base_id", "starts_at"])).await?;
        m.create_index(index("idx_sessions_start", Sessions::Table, &["starts_at"])).await?;
        m.drop_index(Index::drop().name("idx_sessions_base_start_id").table(Sessions::Table).to_owned()).await?;
        m.drop_index(Index::drop().name("idx_sessions_start_id").table(Sessions::Table).to_owned()).await
    }
}
