//! An application to a campaign: a school's group or a citizen's family.
use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "applications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub campaign_id: Uuid,
    /// `school` or `citizen`.
    pub kind: String,
    pub school_id: Option<Uuid>,
    pub students: i32,
    pub teachers: i32,
    /// People in the party (students + teachers for a school).
    pub people: i32,
    /// A citizen's name and phone, erased 90 days after the campaign's last departure.
    pub name: Option<String>,
    pub phone: Option<String>,
    /// A school's contact for the visits.
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    #[serde(skip)]
    pub client_ip: Option<String>,
    pub district_code: String,
    /// Tour ids, best first.
    pub preferences: Json,
    pub status: String,
    pub draw_position: Option<i32>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
