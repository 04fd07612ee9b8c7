//! The accreditation standard: versions with the figures each kind of base must meet and the
//! experts' scoring sheet.

use super::*;

/// What an applicant reports about the base.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"exhibition_area_m2": 1200.0, "open_days_per_year": 280, "free_days_for_students": 30, "annual_visitors": 45000, "staff": 12, "interactive_exhibits": 25}))]
pub struct Figures {
    #[schema(minimum = 0.0)]
    pub exhibition_area_m2: f64,
    #[schema(minimum = 0, maximum = 366)]
    pub open_days_per_year: i32,
    #[schema(minimum = 0, maximum = 366)]
    pub free_days_for_students: i32,
    #[schema(minimum = 0)]
    pub annual_visitors: i32,
    #[schema(minimum = 0)]
    pub staff: i32,
    #[schema(minimum = 0)]
    pub interactive_exhibits: i32,
}

impl Figures {
    pub fn check(&self, field: &str) -> Vec<FieldError> {
        let mut v = Vec::new();
        let f = |n: &str| format!("{field}.{n}");
        if !(self.exhibition_area_m2.is_finite() && (0.0..=10_000_000.0).contains(&self.exhibition_area_m2)) {
            v.push(FieldError::new(f("exhibition_area_m2"), "must be between 0 and 10000000"));
        }
        for (name, value, max) in [
            ("open_days_per_year", self.open_days_per_year, 366),
            ("free_days_for_students", self.free_days_for_students, 366),
            ("annual_visitors", self.annual_visitors, 100_000_000),
            ("staff", self.staff, 1_000_000),
            ("interactive_exhibits", self.interactive_exhibits, 1_000_000),
        ] {
            if !(0..=max).contains(&value) {
                v.push(FieldError::new(f(name), format!("must be between 0 and {max}")));
            }
        }
        v
    }
}

/// The minimums a base of one subcategory must meet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    #[schema(minimum = 0.0)]
    pub min_exhibition_area_m2: f64,
    #[schema(minimum = 0)]
    pub min_open_days: i32,
    #[schema(minimum = 0)]
    pub min_free_days_for_students: i32,
    #[schema(minimum = 0)]
    pub min_annual_visitors: i32,
    #[schema(minimum = 0)]
    pub min_staff: i32,
    #[schema(minimum = 0)]
    pub min_interactive_exhibits: i32,
}

/// A condition of the standard that the reported figures do not meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"figure": "exhibition_area_m2", "required": 1000.0, "reported": 800.0}))]
pub struct Unmet {
    pub figure: String,
    pub required: f64,
    pub reported: f64,
}

/// Every unmet condition of `req` by `f`.
pub fn unmet(f: &Figures, req: &Requirement) -> Vec<Unmet> {
    [
        ("exhibition_area_m2", req.min_exhibition_area_m2, f.exhibition_area_m2),
        ("open_days_per_year", req.min_open_days.into(), f.open_days_per_year.into()),
        ("free_days_for_students", req.min_free_days_for_students.into(), f.free_days_for_students.into()),
        ("annual_visitors", req.min_annual_visitors.into(), f.annual_visitors.into()),
        ("staff", req.min_staff.into(), f.staff.into()),
        ("interactive_exhibits", req.min_interactive_exhibits.into(), f.interactive_exhibits.into()),
    ]
    .into_iter()
    .filter(|(_, required, reported)| reported < required)
    .map(|(figure, required, reported)| Unmet { figure: figure.into(), required, reported })
    .collect()
}

/// One criterion of the experts' scoring sheet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "facilities", "name": "Facilities and exhibits", "max_points": 30}))]
pub struct Criterion {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,39}$")]
    pub key: String,
    #[schema(max_length = 200)]
    pub name: String,
    #[schema(minimum = 1, maximum = 1000)]
    pub max_points: i32,
}

/// A version of the accreditation standard.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Standard {
    pub id: Uuid,
    #[schema(example = "2021")]
    pub version: String,
    pub effective_from: DateTime<Utc>,
    /// The minimums by subcategory.
    pub requirements: BTreeMap<Subcategory, Requirement>,
    pub scoring_sheet: Vec<Criterion>,
    /// Years a certificate is valid.
    pub validity_years: i32,
    pub created_at: DateTime<Utc>,
}

impl Standard {
    pub fn of(m: accreditation_standard::Model) -> Self {
        Self {
            id: m.id,
            version: m.version,
            effective_from: m.effective_from,
            requirements: serde_json::from_value(m.requirements).unwrap_or_default(),
            scoring_sheet: serde_json::from_value(m.scoring_sheet).unwrap_or_default(),
            validity_years: m.validity_years,
            created_at: m.created_at,
        }
    }

    pub fn requirement(&self, s: Subcategory) -> Result<Requirement> {
        self.requirements
            .get(&s)
            .copied()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("standard {} has no requirement for {s}", self.version)))
    }
}

/// A new version of the standard.
#[derive(Debug, Clone)]
pub struct NewStandard {
    pub version: String,
    pub effective_from: DateTime<Utc>,
    pub requirements: BTreeMap<Subcategory, Requirement>,
    pub scoring_sheet: Vec<Criterion>,
    pub validity_years: i32,
}

/// Every version, oldest first (by when it takes effect, then id).
pub async fn standards(conn: &impl ConnectionTrait, page: PageRequest) -> Result<Paged<Standard>> {
    use accreditation_standard::Column as C;
    let mut q = accreditation_standard::Entity::find();
    if let Some(after) = page.after {
        let at = after.at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        q = q.filter(page::after(C::EffectiveFrom, at, C::Id, after.id, Order::Asc));
    }
    let rows = q.order_by_asc(C::EffectiveFrom).order_by_asc(C::Id).limit(page.limit + 1).all(conn).await?;
    Ok(Paged::from_overfetch(rows, page.limit, |s| Cursor::at(s.effective_from, s.id)).map(Standard::of))
}

/// The standard in force at `now`: the latest that has taken effect.
pub async fn standard_in_force(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Standard> {
    accreditation_standard::Entity::find()
        .filter(accreditation_standard::Column::EffectiveFrom.lte(now))
        .order_by_desc(accreditation_standard::Column::EffectiveFrom)
        .one(conn)
        .await?
        .map(Standard::of)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no accreditation standard is in force")))
}

/// Publishes a new version of the standard (admin).
pub async fn create_standard(
    db: &DatabaseConnection,
    actor: &Actor,
    s: NewStandard,
    now: DateTime<Utc>,
) -> Result<Standard> {
    authorize(actor, Action::ManageStandards)?;
    crate::domain::validate::sane_time("effective_from", Some(s.effective_from))?;
    let mut v = Validator::new();
    v.text("version", &s.version, 40);
    v.range("validity_years", s.validity_years, 1, 10);
    for sub in Subcategory::ALL {
        match s.requirements.get(sub) {
            None => v.push(format!("requirements.{sub}"), "every subcategory needs its requirement"),
            Some(r) => {
                let ok = r.min_exhibition_area_m2.is_finite()
                    && r.min_exhibition_area_m2 >= 0.0
                    && [
                        r.min_open_days,
                        r.min_free_days_for_students,
                        r.min_annual_visitors,
                        r.min_staff,
                        r.min_interactive_exhibits,
                    ]
                    .iter()
                    .all(|x| *x >= 0);
                if !ok {
                    v.push(format!("requirements.{sub}"), "minimums must not be negative");
                }
            }
        }
    }
    check_sheet(&mut v, "scoring_sheet", &s.scoring_sheet);
    v.finish()?;
    let id = Uuid::now_v7();
    let row = accreditation_standard::ActiveModel {
        id: Set(id),
        version: Set(s.version.trim().to_string()),
        effective_from: Set(s.effective_from),
        requirements: Set(serde_json::to_value(&s.requirements).map_err(anyhow::Error::from)?),
        scoring_sheet: Set(serde_json::to_value(&s.scoring_sheet).map_err(anyhow::Error::from)?),
        validity_years: Set(s.validity_years),
        created_at: Set(now),
    };
    let txn = begin_write(db).await?;
    accreditation_standard::Entity::insert(row)
        .exec_without_returning(&txn)
        .await
        .map_err(|e| map_constraint(e, || AppError::Conflict(format!("version {} exists", s.version))))?;
    let created = accreditation_standard::Entity::find_by_id(id).one(&txn).await?.map(Standard::of);
    audit::record(&txn, Some(actor), now, Change::created("accreditation_standard", id, &created)).await?;
    txn.commit().await?;
    created.ok_or_else(|| AppError::not_found("standard"))
}

/// Keys unique and well-formed, points positive.
pub fn check_sheet(v: &mut Validator, field: &str, sheet: &[Criterion]) {
    if sheet.is_empty() {
        v.push(field, "needs at least one criterion");
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in sheet.iter().enumerate() {
        let ok_key = !c.key.is_empty()
            && c.key.len() <= 40
            && c.key.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !ok_key || !seen.insert(c.key.clone()) {
            v.push(format!("{field}[{i}].key"), "must be a unique lower-case key");
        }
        v.text(&format!("{field}[{i}].name"), &c.name, 200);
        v.range(&format!("{field}[{i}].max_points"), c.max_points, 1, 1000);
    }
}
