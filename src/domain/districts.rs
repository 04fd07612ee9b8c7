//! The districts: read-only reference data, and the check that a code names one.

use entity::district;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};

use crate::error::{AppError, Result};

pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<district::Model>> {
    Ok(district::Entity::find().order_by_asc(district::Column::Code).all(conn).await?)
}

pub async fn get(conn: &impl ConnectionTrait, code: &str) -> Result<district::Model> {
    district::Entity::find_by_id(code.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no district with code {code}")))
}

/// 422 naming `field` unless `code` is one of the city's districts.
pub async fn ensure_exists(conn: &impl ConnectionTrait, code: &str, field: &str) -> Result<()> {
    match district::Entity::find_by_id(code.to_string()).one(conn).await? {
        Some(_) => Ok(()),
        None => Err(AppError::field(field, format!("{code} is not a district code of the city (GET /v1/districts)"))),
    }
}
