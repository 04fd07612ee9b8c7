//! The demo city: bases over every district and category, their exhibits, schools, and demo
//! accounts. Loading is idempotent: a second run changes nothing.

use chrono::Utc;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

use crate::domain::access::Actor;
use crate::domain::bases::{self, BaseData};
use crate::domain::districts;
use crate::domain::enums::{
    Audience, BaseStatus, Category, ExhibitKind, ExhibitStatus, PoolUnit, Role, SchoolKind, Subcategory,
};
use crate::domain::exhibits::{self, ExhibitData};
use crate::domain::geo::{CITY_BBOX, LatLon};
use crate::domain::schools::{self, SchoolData};
use crate::domain::users::{self, Scope};
use crate::domain::{auth, capacity, sessions};

/// The demo-mode admin password when `KEPU_ADMIN_PASSWORD` is not set.
pub const DEMO_ADMIN_PASSWORD: &str = "kepu-admin";

use Subcategory as S;

/// (name_zh, name_en, host organisation, subcategory, district, lat, lon, area m², themes)
type DemoBase =
    (&'static str, &'static str, &'static str, Subcategory, &'static str, f64, f64, f64, &'static [&'static str]);

const BASES: &[DemoBase] = &[
    (
        "广东科学中心",
        "Guangdong Science Center",
        "广东省科学技术厅",
        S::ScienceVenue,
        "440113",
        23.0405,
        113.3666,
        65000.0,
        &["physics", "space", "robotics"],
    ),
    (
        "广州市科学技术馆",
        "Guangzhou Science and Technology Museum",
        "广州市科学技术协会",
        S::ScienceVenue,
        "440104",
        23.1312,
        113.2880,
        8000.0,
        &["physics", "electricity"],
    ),
    (
        "广东省博物馆",
        "Guangdong Museum",
        "广东省文化和旅游厅",
        S::ScienceVenue,
        "440106",
        23.1145,
        113.3222,
        20000.0,
        &["natural history", "geology"],
    ),
    (
        "广州动物园",
        "Guangzhou Zoo",
        "广州市林业和园林局",
        S::NaturalResource,
        "440104",
        23.1447,
        113.3036,
        3000.0,
        &["zoology", "ecology"],
    ),
    (
        "华南国家植物园",
        "South China National Botanical Garden",
        "中国科学院华南植物园",
        S::NaturalResource,
        "440106",
        23.1857,
        113.3692,
        5000.0,
        &["botany", "ecology"],
    ),
    (
        "中山大学生物博物馆",
        "Sun Yat-sen University Biological Museum",
        "中山大学",
        S::EducationResearch,
        "440105",
        23.0965,
        113.2985,
        2000.0,
        &["biology", "specimens"],
    ),
    (
        "广州塔科普馆",
        "Canton Tower Science Hall",
        "广州塔旅游文化发展股份有限公司",
        S::PublicPlace,
        "440105",
        23.1066,
        113.3245,
        1200.0,
        &["engineering", "meteorology"],
    ),
    (
        "白云山森林科普径",
        "Baiyun Mountain Forest Trail",
        "广州市白云山风景名胜区管理局",
        S::NaturalResource,
        "440111",
        23.1840,
        113.2990,
        500.0,
        &["forestry", "ecology"],
    ),
    (
        "广州地铁博物馆",
        "Guangzhou Metro Museum",
        "广州地铁集团有限公司",
        S::Enterprise,
        "440105",
        23.0990,
        113.3160,
        3500.0,
        &["transport", "engineering"],
    ),
    (
        "南方电网科普馆",
        "China Southern Power Grid Science Hall",
        "中国南方电网有限责任公司",
        S::Enterprise,
        "440106",
        23.1290,
        113.3560,
        2500.0,
        &["electricity", "energy"],
    ),
    (
        "广汽传祺智能工厂",
        "GAC Trumpchi Smart Factory",
        "广汽乘用车有限公司",
        S::ProductionFacility,
        "440113",
        22.9700,
        113.3990,
        4000.0,
        &["manufacturing", "robotics"],
    ),
    (
        "广州生物岛科普中心",
        "Guangzhou Bio-Island Science Center",
        "广州国际生物岛管理机构",
        S::EducationResearch,
        "440112",
        23.0860,
        113.3660,
        1800.0,
        &["biomedicine"],
    ),
    (
        "中国科学院广州生物医药与健康研究院",
        "Guangzhou Institutes of Biomedicine and Health",
        "中国科学院",
        S::EducationResearch,
        "440112",
        23.1700,
        113.4800,
        1500.0,
        &["biomedicine", "genetics"],
    ),
    (
        "黄埔港航运科普馆",
        "Huangpu Port Shipping Science Hall",
        "广州港集团有限公司",
        S::Enterprise,
        "440112",
        23.0930,
        113.4300,
        1600.0,
        &["transport", "oceans"],
    ),
    (
        "南沙湿地公园",
        "Nansha Wetland Park",
        "广州南沙新区管理委员会",
        S::NaturalResource,
        "440115",
        22.6200,
        113.6400,
        800.0,
        &["wetlands", "birds"],
    ),
    (
        "中国科学院南海海洋研究所科普基地",
        "South China Sea Institute of Oceanology",
        "中国科学院",
        S::EducationResearch,
        "440115",
        22.7500,
        113.6000,
        1200.0,
        &["oceans", "biology"],
    ),
    (
        "南沙天后宫海洋文化馆",
        "Nansha Maritime Culture Hall",
        "南沙区文化广电旅游局",
        S::PublicPlace,
        "440115",
        22.7590,
        113.6080,
        900.0,
        &["oceans", "history of science"],
    ),
    (
        "流溪河国家森林公园",
        "Liuxihe National Forest Park",
        "广州市林业和园林局",
        S::NaturalResource,
        "440117",
        23.7600,
        113.7800,
        600.0,
        &["forestry", "water"],
    ),
    (
        "从化生态农业科普园",
        "Conghua Ecological Agriculture Park",
        "从化区农业农村局",
        S::Agriculture,
        "440117",
        23.5600,
        113.5500,
        1500.0,
        &["agriculture", "ecology"],
    ),
    (
        "从化温泉地质科普馆",
        "Conghua Hot Spring Geology Hall",
        "从化区自然资源局",
        S::ScienceVenue,
        "440117",
        23.6450,
        113.6320,
        1100.0,
        &["geology", "water"],
    ),
    (
        "增城荔枝文化村",
        "Zengcheng Lychee Culture Village",
        "增城区农业农村局",
        S::Agriculture,
        "440118",
        23.3500,
        113.7800,
        700.0,
        &["agriculture", "botany"],
    ),
    (
        "增城新塘牛仔服装智造中心",
        "Xintang Denim Smart Manufacturing Center",
        "新塘镇人民政府",
        S::ProductionFacility,
        "440118",
        23.1300,
        113.6100,
        2200.0,
        &["manufacturing", "materials"],
    ),
    (
        "白水寨地质公园",
        "Baishuizhai Geopark",
        "增城区自然资源局",
        S::NaturalResource,
        "440118",
        23.5400,
        113.7600,
        400.0,
        &["geology", "water"],
    ),
    (
        "花都香草世界",
        "Huadu Herb World",
        "广州香草世界农业发展有限公司",
        S::Agriculture,
        "440114",
        23.4500,
        113.2200,
        900.0,
        &["botany", "agriculture"],
    ),
    (
        "广州北站交通科普馆",
        "Guangzhou North Station Transport Hall",
        "广州铁路集团",
        S::PublicPlace,
        "440114",
        23.3800,
        113.2000,
        1300.0,
        &["transport"],
    ),
    (
        "花都航空科普馆",
        "Huadu Aviation Science Hall",
        "广东省航空学会",
        S::ScienceVenue,
        "440114",
        23.3950,
        113.2150,
        1600.0,
        &["aviation", "space"],
    ),
    (
        "广州白云国际机场航空科普基地",
        "Baiyun Airport Aviation Base",
        "广东省机场管理集团",
        S::PublicPlace,
        "440111",
        23.3920,
        113.2990,
        1000.0,
        &["aviation"],
    ),
    (
        "白云区气象科普馆",
        "Baiyun Meteorology Hall",
        "广州市气象局",
        S::ScienceVenue,
        "440111",
        23.2100,
        113.2700,
        800.0,
        &["meteorology"],
    ),
    (
        "荔湾岭南中医药博物馆",
        "Lingnan Traditional Medicine Museum",
        "广州医药集团有限公司",
        S::ScienceVenue,
        "440103",
        23.1250,
        113.2450,
        1400.0,
        &["medicine", "botany"],
    ),
    (
        "荔湾水务科普馆",
        "Liwan Water Affairs Hall",
        "广州市水务局",
        S::PublicPlace,
        "440103",
        23.1100,
        113.2300,
        700.0,
        &["water", "engineering"],
    ),
    (
        "天河软件园人工智能体验中心",
        "Tianhe AI Experience Center",
        "广州天河软件园管理委员会",
        S::Enterprise,
        "440106",
        23.1550,
        113.3500,
        1500.0,
        &["artificial intelligence", "robotics"],
    ),
    (
        "越秀消防科普教育馆",
        "Yuexiu Fire Safety Education Hall",
        "广州市消防救援支队",
        S::Other,
        "440104",
        23.1350,
        113.2700,
        600.0,
        &["safety"],
    ),
    (
        "海珠湿地科普馆",
        "Haizhu Wetland Science Hall",
        "海珠国家湿地公园管理处",
        S::NaturalResource,
        "440105",
        23.0800,
        113.3450,
        1000.0,
        &["wetlands", "birds", "ecology"],
    ),
    (
        "番禺大学城天文台",
        "University Town Observatory",
        "广州大学",
        S::EducationResearch,
        "440113",
        23.0450,
        113.3800,
        500.0,
        &["astronomy", "space"],
    ),
];

fn category_of(s: Subcategory) -> Category {
    match s {
        S::ScienceVenue => Category::Venue,
        _ => Category::NonVenue,
    }
}

fn audiences_of(s: Subcategory) -> Vec<Audience> {
    use Audience::*;
    match s {
        S::ScienceVenue => vec![Preschool, PrimaryLower, PrimaryUpper, Junior, Senior, Adult],
        S::EducationResearch => vec![Junior, Senior, Adult],
        S::ProductionFacility | S::Enterprise => vec![PrimaryUpper, Junior, Senior],
        _ => vec![PrimaryLower, PrimaryUpper, Junior, Senior],
    }
}

fn exhibits_of(s: Subcategory, i: usize) -> Vec<ExhibitData> {
    let (a, b, c): (&str, &str, &str) = match s {
        S::ScienceVenue => ("静电球 Van de Graaff generator", "行星运行仪 Orrery", "地震体验平台 Earthquake simulator"),
        S::EducationResearch => ("显微镜观察台 Microscope bench", "实验室开放日 Open lab", "标本陈列 Specimen gallery"),
        S::PublicPlace => ("互动导览屏 Interactive guide", "模型沙盘 Scale model", "科普长廊 Science corridor"),
        S::ProductionFacility => {
            ("生产线参观走廊 Production line walk", "工业机器人演示 Robot demo", "材料展示墙 Materials wall")
        }
        S::Agriculture => ("种植体验田 Planting plot", "昆虫标本 Insect specimens", "温室大棚 Greenhouse"),
        S::Enterprise => ("企业技术展厅 Technology hall", "虚拟现实体验 VR experience", "产品拆解展 Teardown display"),
        S::NaturalResource => ("自然观察径 Nature trail", "鸟类观测点 Bird hide", "岩石标本 Rock specimens"),
        S::Other => ("灭火体验区 Fire drill zone", "逃生通道模拟 Escape simulator", "应急装备展 Equipment display"),
    };
    let kinds = [ExhibitKind::Interactive, ExhibitKind::Static, ExhibitKind::Multimedia];
    [a, b, c]
        .into_iter()
        .zip(kinds)
        .enumerate()
        .map(|(j, (name, kind))| ExhibitData {
            name: name.into(),
            description: Some(format!("{name}: a demo exhibit.")),
            hall: Some(format!("Hall {}", (b'A' + j as u8) as char)),
            kind,
            status: if (i + j).is_multiple_of(11) { ExhibitStatus::Maintenance } else { ExhibitStatus::OnDisplay },
            shareable: (i + j).is_multiple_of(3),
            audiences: audiences_of(s),
        })
        .collect()
}

fn status_of(i: usize) -> BaseStatus {
    match i % 12 {
        5 => BaseStatus::Applicant,
        9 => BaseStatus::Rectification,
        _ => BaseStatus::Accredited,
    }
}

/// A small deterministic generator, so that the demo city is the same on every machine.
struct Lcg(u64);

impl Lcg {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }
}

/// Four weeks of visits at every accredited base (Tue and Thu mornings, Sat afternoons, in
/// local time), and a city-wide Science Week quota shared by the science venues' first week.
async fn seed_sessions(
    db: &DatabaseConnection,
    admin: &Actor,
    base_ids: &[uuid::Uuid],
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<usize> {
    let today = now.with_timezone(&sessions::city_offset()).date_naive();
    let quota = capacity::create(
        db,
        admin,
        capacity::NewPool {
            name: "科技活动周 Science Week free tours".into(),
            unit: PoolUnit::Visitors,
            capacity: 600,
            base_id: None,
        },
        now,
    )
    .await?;
    let mut count = 0;
    for (i, (&id, b)) in base_ids.iter().zip(BASES).enumerate() {
        if status_of(i) != BaseStatus::Accredited {
            continue;
        }
        let venue = category_of(b.3) == Category::Venue;
        let at = |h: u32, m: u32| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
        let pattern = sessions::Pattern {
            from_date: today + chrono::Duration::days(1),
            to_date: today + chrono::Duration::days(28),
            weekdays: vec![chrono::Weekday::Tue, chrono::Weekday::Thu, chrono::Weekday::Sat],
            times: vec![(at(9, 30), at(11, 0)), (at(14, 0), at(15, 30))],
            capacity: if venue { 120 } else { 60 },
            audiences: audiences_of(b.3),
            max_group_size: None,
            pool_ids: vec![],
        };
        let (created, _) = sessions::generate(db, admin, id, pattern, now).await?;
        count += created.len();
        if venue {
            for s in created.iter().filter(|s| s.session.starts_at < now + chrono::Duration::days(7)) {
                capacity::attach(db, admin, quota.pool.id, s.session.id, now).await?;
            }
        }
    }
    Ok(count)
}

/// Science tours (科普一日游): a morning at an accredited base and an afternoon at the nearest
/// other one for a shared audience, on the first day in the second week both are open; one
/// tour per base pair, at most four.
async fn seed_tours(
    db: &DatabaseConnection,
    admin: &Actor,
    base_ids: &[uuid::Uuid],
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    use entity::session;
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    let accredited: Vec<(usize, uuid::Uuid)> =
        base_ids.iter().copied().enumerate().filter(|(i, _)| status_of(*i) == BaseStatus::Accredited).collect();
    let at = |i: usize| LatLon { lat: BASES[i].5, lon: BASES[i].6 };
    let local_hour = |t: chrono::DateTime<Utc>| {
        use chrono::Timelike;
        t.with_timezone(&sessions::city_offset()).hour()
    };
    let mut made = Vec::new();
    let mut used = std::collections::HashSet::new();
    for &(i, morning_base) in &accredited {
        if made.len() == 4 {
            break;
        }
        let shared = |j: usize| audiences_of(BASES[i].3).into_iter().find(|a| audiences_of(BASES[j].3).contains(a));
        let Some(&(j, afternoon_base)) = accredited
            .iter()
            .filter(|(j, _)| *j != i && !used.contains(j) && !used.contains(&i) && shared(*j).is_some())
            .min_by(|(a, _), (b, _)| at(i).distance_km(at(*a)).total_cmp(&at(i).distance_km(at(*b))))
        else {
            continue;
        };
        let (Some(audience), true) = (shared(j), at(i).distance_km(at(j)) < 20.0) else { continue };
        let of_base = |b: uuid::Uuid| {
            session::Entity::find()
                .filter(session::Column::BaseId.eq(b))
                .filter(session::Column::StartsAt.gt(now + chrono::Duration::days(7)))
                .order_by_asc(session::Column::StartsAt)
                .all(db)
        };
        let (mornings, afternoons) = (of_base(morning_base).await?, of_base(afternoon_base).await?);
        let pair = mornings.iter().filter(|m| local_hour(m.starts_at) < 12).find_map(|m| {
            afternoons
                .iter()
                .find(|a| a.starts_at.date_naive() == m.starts_at.date_naive() && local_hour(a.starts_at) >= 12)
                .map(|a| (m.id, a.id))
        });
        let Some((first, second)) = pair else { continue };
        let input = crate::domain::tours::TourInput {
            title: format!("科普一日游：{}—{}", BASES[i].0, BASES[j].0),
            audience,
            meeting_point: format!("{}正门", BASES[i].0),
            meeting_location: at(i),
            places: 45,
            legs: vec![first, second],
        };
        made.push(crate::domain::tours::create(db, admin, input, now).await?.tour.id);
        used.insert(i);
        used.insert(j);
    }
    Ok(made)
}

/// The accredited demo bases hold certificates issued in 2024 (so that plaques can be
/// verified) and a plaque at their gate.
async fn seed_certificates_and_plaques(
    db: &DatabaseConnection,
    admin: &Actor,
    base_ids: &[uuid::Uuid],
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    use entity::{accreditation, base};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter};
    let standard = crate::domain::accreditation::standard_in_force(db, now).await?;
    let issued = chrono::DateTime::parse_from_rfc3339("2024-06-18T10:00:00+08:00")?.with_timezone(&Utc);
    let until = chrono::DateTime::parse_from_rfc3339("2029-06-18T10:00:00+08:00")?.with_timezone(&Utc);
    for (i, id) in base_ids.iter().enumerate() {
        if !matches!(status_of(i), BaseStatus::Accredited | BaseStatus::Rectification) {
            continue;
        }
        let number = format!("GZKP-2024-{:04}", i + 1);
        accreditation::Entity::insert(accreditation::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            base_id: Set(*id),
            standard_id: Set(standard.id),
            applicant_id: Set(admin.user_id),
            status: Set("accredited".into()),
            figures: Set(serde_json::json!({"exhibition_area_m2": BASES[i].7, "open_days_per_year": 300, "free_days_for_students": 40, "annual_visitors": 50000, "staff": 10, "interactive_exhibits": 20})),
            evidence_links: Set(serde_json::json!([])),
            unmet: Set(Some(serde_json::json!([]))),
            district_comment: Set(Some("recommended".into())),
            notice_starts_at: Set(Some(issued - chrono::Duration::days(9))),
            notice_ends_at: Set(Some(issued - chrono::Duration::days(2))),
            decision_comment: Set(Some("accredited in the 2024 round".into())),
            certificate_number: Set(Some(number.clone())),
            decided_at: Set(Some(issued)),
            version: Set(1),
            created_at: Set(issued - chrono::Duration::days(60)),
            updated_at: Set(issued),
        })
        .exec_without_returning(db)
        .await?;
        base::Entity::update_many()
            .col_expr(base::Column::CertificateNumber, Expr::value(number))
            .col_expr(base::Column::ValidUntil, Expr::value(until))
            .filter(base::Column::Id.eq(*id))
            .exec(db)
            .await?;
        let b = BASES[i];
        let plaque = crate::domain::signage::SignApplication {
            kind: crate::domain::enums::SignKind::Plaque,
            location: LatLon { lat: b.5 + 0.0003, lon: b.6 },
            road_name: None,
            standard_version: None,
        };
        let sign = crate::domain::signage::apply(db, admin, *id, plaque, now).await?;
        // Most plaques are up; a few applications wait for their district.
        if i % 4 != 3 {
            crate::domain::signage::decide(db, admin, sign.sign.id, true, None, None, now).await?;
            crate::domain::signage::install(db, admin, sign.sign.id, now).await?;
        }
    }
    Ok(())
}

/// Two applications of applicant bases, so that the evaluator and the public have something to
/// do in the demo: one in expert review with `evaluator-demo` assigned, one on public notice
/// (scored by the evaluator). Each is applied for and recommended by its district's officer
/// (`officer-<district>`, an account made for it).
async fn seed_applications(
    db: &DatabaseConnection,
    admin: &Actor,
    password: &str,
    base_ids: &[uuid::Uuid],
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    use crate::domain::accreditation::{self as acc, Application, Figures, ScoreInput};
    let actor = |name: &'static str| async move {
        let account = users::find_by_username(db, name).await?.ok_or_else(|| anyhow::anyhow!("no {name}"))?;
        anyhow::Ok(auth::actor_of(db, account).await?)
    };
    let evaluator = actor("evaluator-demo").await?;
    let standard = acc::standard_in_force(db, now).await?;
    let applicants = (0..BASES.len()).filter(|i| status_of(*i) == BaseStatus::Applicant).take(2);
    for (n, i) in applicants.enumerate() {
        let (district, pinyin) = (BASES[i].4, ["haizhu", "conghua"][n]);
        let username = format!("officer-{pinyin}");
        if users::find_by_username(db, &username).await?.is_none() {
            let scope = Scope {
                role: Role::DistrictOfficer,
                district_code: Some(district.into()),
                school_id: None,
                base_ids: vec![],
            };
            users::create(db, Some(admin), username.clone(), password.into(), scope, now).await?;
        }
        let officer = auth::actor_of(
            db,
            users::find_by_username(db, &username).await?.ok_or_else(|| anyhow::anyhow!("{username}"))?,
        )
        .await?;
        let figures = Figures {
            exhibition_area_m2: BASES[i].7,
            open_days_per_year: 280,
            free_days_for_students: 60,
            annual_visitors: 80_000,
            staff: 12,
            interactive_exhibits: 30,
        };
        let application = Application { base_id: base_ids[i], figures, evidence_links: vec![] };
        let id = acc::apply(db, &officer, application, now).await?.accreditation.id;
        acc::submit(db, &officer, id, true, now).await?;
        acc::district_review(db, &officer, id, true, "设施与运营符合推荐条件".into(), now).await?;
        acc::assign(db, admin, id, vec![evaluator.user_id], now).await?;
        if n == 1 {
            let points = standard
                .scoring_sheet
                .iter()
                .map(|c| (c.key.clone(), (f64::from(c.max_points) * 0.85).round()))
                .collect();
            let input = ScoreInput { points, comment: Some("展教资源丰富".into()), comments: Default::default() };
            acc::score(db, &evaluator, id, input, now).await?;
            acc::start_notice(db, admin, id, now).await?;
        }
    }
    Ok(())
}

/// This year's evaluation cycle, with the first base's evaluation assigned to `evaluator-demo`
/// and its self-report filed by `operator-demo`: the evaluator has an annual evaluation to score.
async fn seed_evaluation(
    db: &DatabaseConnection,
    admin: &Actor,
    base_id: uuid::Uuid,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    use crate::domain::evaluation::{self as ev, Band, Indicator, Measure, Rubric, Section};
    use sea_orm::{ColumnTrait, QueryFilter};
    let indicator = |key: &str, name: &str, max: f64, measure: Option<Measure>, bands: Vec<(f64, f64)>| Indicator {
        key: key.into(),
        name: name.into(),
        max_points: max,
        measure,
        bands: bands.into_iter().map(|(at_least, points)| Band { at_least, points }).collect(),
    };
    let section = |key: &str, name: &str, weight: f64, indicators| Section {
        key: key.into(),
        name: name.into(),
        weight,
        indicators,
    };
    let rubric = Rubric {
        sections: vec![
            section(
                "facilities",
                "设施与展品",
                30.0,
                vec![indicator(
                    "exhibits",
                    "展品更新",
                    10.0,
                    Some(Measure::ExhibitsUpdated),
                    vec![(1.0, 6.0), (3.0, 10.0)],
                )],
            ),
            section(
                "operations",
                "运行与服务",
                50.0,
                vec![
                    indicator(
                        "sessions",
                        "开放场次",
                        10.0,
                        Some(Measure::SessionsOffered),
                        vec![(10.0, 6.0), (40.0, 10.0)],
                    ),
                    indicator("service", "服务质量", 10.0, None, vec![]),
                ],
            ),
            section(
                "schools",
                "馆校合作",
                20.0,
                vec![indicator(
                    "groups",
                    "学校团队",
                    10.0,
                    Some(Measure::SchoolGroups),
                    vec![(1.0, 5.0), (20.0, 10.0)],
                )],
            ),
        ],
    };
    let year = chrono::Datelike::year(&now.with_timezone(&sessions::city_offset()));
    let (cycle, _) = ev::open_cycle(db, admin, year, rubric, now + chrono::Duration::days(30), now).await?;
    let Some(evaluation) = entity::evaluation::Entity::find()
        .filter(entity::evaluation::Column::CycleId.eq(cycle.cycle.id))
        .filter(entity::evaluation::Column::BaseId.eq(base_id))
        .one(db)
        .await?
    else {
        return Ok(());
    };
    let evaluator =
        users::find_by_username(db, "evaluator-demo").await?.ok_or_else(|| anyhow::anyhow!("evaluator-demo"))?;
    ev::assign(db, admin, evaluation.id, vec![evaluator.id], now).await?;
    let operator =
        users::find_by_username(db, "operator-demo").await?.ok_or_else(|| anyhow::anyhow!("operator-demo"))?;
    let operator = auth::actor_of(db, operator).await?;
    let report = serde_json::json!({
        "sessions_offered": 120, "days_with_sessions": 96, "visitors_booked": 8600, "visitors_checked_in": 7900,
        "school_groups": 160, "distinct_schools": 48, "no_shows": 3, "exhibits_updated": 6,
        "summary": "全年开放 300 天，新增互动展品 6 件，与 48 所学校开展合作。"
    });
    ev::self_report(db, &operator, evaluation.id, report, now).await?;
    Ok(())
}

/// Creates the `admin` account unless it exists. Returns it as an actor.
pub async fn ensure_admin(db: &DatabaseConnection, password: &str) -> anyhow::Result<Actor> {
    let account = match users::find_by_username(db, "admin").await? {
        Some(u) => u,
        None => {
            let scope = Scope { role: Role::Admin, district_code: None, school_id: None, base_ids: vec![] };
            users::create(db, None, "admin".into(), password.into(), scope, Utc::now()).await?.user
        }
    };
    Ok(auth::actor_of(db, account).await?)
}

/// Loads the demo city once.
pub async fn seed(db: &DatabaseConnection, admin_password: &str) -> anyhow::Result<()> {
    let admin = ensure_admin(db, admin_password).await?;
    if entity::base::Entity::find().count(db).await? > 0 {
        tracing::info!("demo data already present; nothing to do");
        return Ok(());
    }
    let now = Utc::now();
    let mut base_ids = Vec::new();
    for (i, &(zh, en, host, sub, district, lat, lon, area, themes)) in BASES.iter().enumerate() {
        let data = BaseData {
            name_zh: zh.into(),
            name_en: en.into(),
            host_org: host.into(),
            category: category_of(sub),
            subcategory: sub,
            district_code: district.into(),
            address: format!("{zh}, Guangzhou"),
            location: LatLon { lat, lon },
            exhibition_area_m2: Some(area),
            opening_hours: Some("Tue–Sun 09:00–17:00".into()),
            contact_phone: Some(format!("020-{:04} {:04}", 3000 + i * 37, 1000 + i * 113)),
            contact_email: Some(format!("visit{:02}@kepu-demo.cn", i + 1)),
            themes: themes.iter().map(|t| t.to_string()).collect(),
            audiences: audiences_of(sub),
            accessibility: Some("step-free entrance".into()),
            status: status_of(i),
            booking_rules: bases::BookingRules { max_group_size: Some(120), ..Default::default() },
        };
        let record = bases::create(db, &admin, data, now).await?;
        for e in exhibits_of(sub, i) {
            exhibits::create(db, &admin, record.base.id, e, now).await?;
        }
        base_ids.push(record.base.id);
    }

    let mut rng = Lcg(2021);
    let bbox = *CITY_BBOX;
    let mut first_school = None;
    for d in districts::list(db).await? {
        for n in 1..=5 {
            let kind =
                [SchoolKind::Primary, SchoolKind::Primary, SchoolKind::Middle, SchoolKind::High, SchoolKind::Combined]
                    [n - 1];
            let label = match kind {
                SchoolKind::Primary => "实验小学",
                SchoolKind::Middle => "中学",
                SchoolKind::High => "高级中学",
                SchoolKind::Combined => "九年一贯制学校",
            };
            let lat = (d.lat + (rng.next_unit() - 0.5) * 0.1).clamp(bbox.min_lat, bbox.max_lat);
            let lon = (d.lon + (rng.next_unit() - 0.5) * 0.1).clamp(bbox.min_lon, bbox.max_lon);
            let data = SchoolData {
                name: format!("广州市{}第{}{}", d.name_zh, n, label),
                district_code: d.code.clone(),
                address: format!("广州市{}学府路{}号", d.name_zh, 10 * n),
                location: LatLon { lat, lon },
                kind,
                student_count: 600 + (rng.next_unit() * 2400.0) as i32,
            };
            let s = schools::create(db, &admin, data, now).await?;
            first_school.get_or_insert(s.id);
        }
    }

    let sessions = seed_sessions(db, &admin, &base_ids, now).await?;
    let tour_ids = seed_tours(db, &admin, &base_ids, now).await?;
    let tours = tour_ids.len();
    // Science Week sign-up over the tours: opens in an hour (its seed committed to now),
    // closes in five days, before the first tour.
    if !tour_ids.is_empty() {
        let opens = now + chrono::Duration::hours(1);
        let input = crate::domain::campaigns::CampaignInput {
            title: "科技活动周 · 科普一日游报名 Science Week tours".into(),
            opens_at: opens,
            closes_at: opens + chrono::Duration::days(5),
            for_schools: true,
            for_citizens: true,
            max_wins: 1,
            tours: tour_ids,
        };
        crate::domain::campaigns::create(db, &admin, input, now).await?;
    }
    seed_certificates_and_plaques(db, &admin, &base_ids, now).await?;

    // One account of each scoped role, sharing the admin's password: demo only.
    let accounts = [
        (
            "operator-demo",
            Scope { role: Role::Operator, district_code: None, school_id: None, base_ids: vec![base_ids[0]] },
        ),
        (
            "officer-tianhe",
            Scope {
                role: Role::DistrictOfficer,
                district_code: Some("440106".into()),
                school_id: None,
                base_ids: vec![],
            },
        ),
        ("school-demo", Scope { role: Role::School, district_code: None, school_id: first_school, base_ids: vec![] }),
        ("evaluator-demo", Scope { role: Role::Evaluator, district_code: None, school_id: None, base_ids: vec![] }),
    ];
    for (name, scope) in accounts {
        if users::find_by_username(db, name).await?.is_none() {
            users::create(db, Some(&admin), name.into(), admin_password.into(), scope, now).await?;
        }
    }
    seed_applications(db, &admin, admin_password, &base_ids, now).await?;
    seed_evaluation(db, &admin, base_ids[0], now).await?;
    tracing::info!(bases = BASES.len(), sessions, tours, "demo city loaded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn demo_covers_every_district_subcategory_and_category() {
        let districts: HashSet<_> = BASES.iter().map(|b| b.4).collect();
        assert_eq!(districts.len(), 11);
        let subs: HashSet<_> = BASES.iter().map(|b| b.3).collect();
        assert_eq!(subs.len(), Subcategory::ALL.len());
        assert!(BASES.len() >= 30);
        for b in BASES {
            assert!(CITY_BBOX.contains(LatLon { lat: b.5, lon: b.6 }), "{} outside the city", b.0);
        }
    }
}
