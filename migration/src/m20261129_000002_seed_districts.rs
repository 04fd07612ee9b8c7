//! Seeds the districts table from the bundled reference data; reference data, not demo data.

use sea_orm_migration::prelude::*;
use serde::Deserialize;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Deserialize)]
struct File {
    districts: Vec<District>,
}

#[derive(Deserialize)]
struct District {
    code: String,
    name_zh: String,
    name_en: String,
    seat_wgs84: Point,
}

#[derive(Deserialize)]
struct Point {
    lat: f64,
    lon: f64,
}

#[derive(DeriveIden)]
enum Districts {
    Table,
    Code,
    NameZh,
    NameEn,
    Lat,
    Lon,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let file: File =
            serde_json::from_str(crate::DISTRICTS_JSON).map_err(|e| DbErr::Migration(format!("district data: {e}")))?;
        let mut insert = Query::insert()
            .into_table(Districts::Table)
            .columns([Districts::Code, Districts::NameZh, Districts::NameEn, Districts::Lat, Districts::Lon])
            .take();
        for d in file.districts {
            insert.values_panic([
                d.code.into(),
                d.name_zh.into(),
                d.name_en.into(),
                d.seat_wgs84.lat.into(),
                d.seat_wgs84.lon.into(),
            ]);
        }
        m.exec_stmt(insert).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.exec_stmt(Query::delete().from_table(Districts::Table).take()).await
    }
}
