//! Who may do what: the one place where every write checks the caller's role and scope.

use uuid::Uuid;

use crate::domain::enums::Role;
use crate::error::{AppError, Result};

/// The authenticated caller, with its scopes loaded.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Uuid,
    pub username: String,
    pub role: Role,
    pub district_code: Option<String>,
    pub school_id: Option<Uuid>,
    pub base_ids: Vec<Uuid>,
    /// The request this action belongs to, for the audit log.
    pub request_id: Option<String>,
    /// The bearer token in use, if the caller came with one.
    pub token_id: Option<Uuid>,
}

/// Every guarded action, with the scope it touches.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    ManageUsers,
    ReadAudit,
    /// Create a base in a district.
    CreateBase {
        district_code: &'a str,
    },
    /// Edit a base's profile.
    EditBase {
        base_id: Uuid,
    },
    /// Change a base's status or district: the bureau's decision.
    ChangeBaseStanding,
    /// Create, edit or delete the exhibits of a base.
    EditExhibits {
        base_id: Uuid,
    },
    /// Lend a base's exhibits or borrow for it (展品共享): request, approve, decline, cancel,
    /// dispatch, receive back.
    ShareExhibits {
        base_id: Uuid,
    },
    CreateSchool,
    /// Edit a school's profile (its own account), all but its district.
    EditSchool {
        school_id: Uuid,
    },
    /// Move a school to another district: district statistics and fairness weights rest on
    /// it, so the bureau or the officer of the school's (current) district, never the school.
    ChangeSchoolDistrict {
        district_code: &'a str,
    },
    /// Read the school directory.
    ReadSchools,
    /// Create, cancel and pool the sessions of a base; check groups in.
    ManageSessions {
        base_id: Uuid,
    },
    /// Create city-wide capacity pools and decide which sessions draw on them.
    ManageCityPools,
    /// Book, or cancel before the visit, for a school.
    BookFor {
        school_id: Uuid,
    },
    /// Read the consistency report of all pools.
    ReadConsistency,
    /// The bureau's decisions: standards, expert assignments, public notices, decisions,
    /// evaluation cycles and their results.
    ManageStandards,
    /// Keep the working calendar (public holidays, make-up working days).
    ManageCalendar,
    /// Apply for accreditation of a base: its operators, or its district's officer.
    Apply {
        base_id: Uuid,
        district_code: &'a str,
    },
    /// A district office's decisions about a base in its district (recommendation, sign
    /// approval and inspection).
    DistrictDecision {
        district_code: &'a str,
    },
    /// Make or cancel a science tour whose legs are all in `district_code` (`None`: legs in
    /// several districts, the bureau's alone).
    ManageTours {
        district_code: Option<&'a str>,
    },
}

impl Actor {
    /// kepu itself, acting for the bureau on a rule's behalf (serving a campaign's waiting
    /// list when places free up): an admin with no account behind it.
    pub fn system() -> Self {
        Self {
            user_id: Uuid::nil(),
            username: "kepu".into(),
            role: Role::Admin,
            district_code: None,
            school_id: None,
            base_ids: vec![],
            request_id: None,
            token_id: None,
        }
    }

    /// The account behind the act (`None` for kepu itself).
    pub fn account_id(&self) -> Option<Uuid> {
        (!self.user_id.is_nil()).then_some(self.user_id)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn operates(&self, base_id: Uuid) -> bool {
        self.role == Role::Operator && self.base_ids.contains(&base_id)
    }
}

/// Who objected to an application, and how to reach them, is the bureau's to know: an
/// objector may be a neighbour or an employee of the base, so the base's operators, its
/// district's officer and the experts see an objection's reason, time and resolution only.
pub fn sees_objectors(actor: &Actor) -> bool {
    actor.is_admin()
}

/// Whether answers name the staff accounts behind an act (who inspected a sign): for the
/// bureau, district officers, operators and experts; never for the public or schools, whose
/// answers carry no account ids.
pub fn sees_staff_accounts(actor: Option<&Actor>) -> bool {
    actor.is_some_and(|a| a.role != Role::School)
}

/// Allows or refuses (403) an action for an actor.
pub fn authorize(actor: &Actor, action: Action<'_>) -> Result<()> {
    if actor.is_admin() {
        return Ok(());
    }
    let allowed = match action {
        Action::ManageUsers
        | Action::ReadAudit
        | Action::ChangeBaseStanding
        | Action::CreateSchool
        | Action::ManageCityPools
        | Action::ReadConsistency
        | Action::ManageStandards
        | Action::ManageCalendar => false,
        Action::Apply { base_id, district_code } => {
            actor.operates(base_id)
                || (actor.role == Role::DistrictOfficer && actor.district_code.as_deref() == Some(district_code))
        }
        Action::DistrictDecision { district_code } | Action::ChangeSchoolDistrict { district_code } => {
            actor.role == Role::DistrictOfficer && actor.district_code.as_deref() == Some(district_code)
        }
        Action::ManageTours { district_code } => {
            actor.role == Role::DistrictOfficer
                && district_code.is_some()
                && actor.district_code.as_deref() == district_code
        }
        Action::CreateBase { district_code } => {
            actor.role == Role::DistrictOfficer && actor.district_code.as_deref() == Some(district_code)
        }
        Action::EditBase { base_id }
        | Action::EditExhibits { base_id }
        | Action::ShareExhibits { base_id }
        | Action::ManageSessions { base_id } => actor.operates(base_id),
        Action::EditSchool { school_id } | Action::BookFor { school_id } => {
            actor.role == Role::School && actor.school_id == Some(school_id)
        }
        Action::ReadSchools => true,
    };
    if allowed { Ok(()) } else { Err(AppError::forbidden(refusal(actor, action))) }
}

fn refusal(actor: &Actor, action: Action<'_>) -> String {
    let role = actor.role;
    match action {
        Action::ManageUsers => "only an admin manages accounts".into(),
        Action::ReadAudit => "only an admin reads the audit log".into(),
        Action::ChangeBaseStanding => "only an admin changes a base's status or district".into(),
        Action::CreateSchool => "only an admin registers schools".into(),
        Action::CreateBase { district_code } => {
            format!("a {role} account cannot create a base in district {district_code}")
        }
        Action::EditBase { base_id } => format!("a {role} account cannot edit base {base_id}"),
        Action::EditExhibits { base_id } => {
            format!("a {role} account cannot change the exhibits of base {base_id}")
        }
        Action::ShareExhibits { base_id } => {
            format!("a {role} account cannot lend or borrow exhibits for base {base_id}")
        }
        Action::EditSchool { school_id } => format!("a {role} account cannot edit school {school_id}"),
        Action::ChangeSchoolDistrict { district_code } => format!(
            "a school's district is changed by the bureau or the officer of its district ({district_code}), not by a {role} account"
        ),
        Action::ReadSchools => format!("a {role} account cannot read schools"),
        Action::ManageSessions { base_id } => format!("a {role} account cannot manage the sessions of base {base_id}"),
        Action::ManageCityPools => {
            "a city-wide capacity pool is the bureau's: only an admin creates one and decides which sessions draw on it"
                .into()
        }
        Action::BookFor { school_id } => format!("a {role} account cannot book or cancel for school {school_id}"),
        Action::ReadConsistency => "only an admin reads the consistency report".into(),
        Action::ManageStandards => "only the bureau (admin) takes this step".into(),
        Action::ManageCalendar => "only the bureau (admin) keeps the working calendar".into(),
        Action::Apply { base_id, .. } => format!("a {role} account cannot apply for base {base_id}"),
        Action::DistrictDecision { district_code } => {
            format!("only the district officer of district {district_code} takes this step")
        }
        Action::ManageTours { district_code: Some(d) } => {
            format!(
                "a tour through district {d} is made by the bureau or that district's officer, not by a {role} account"
            )
        }
        Action::ManageTours { district_code: None } => {
            "a tour through several districts is the bureau's (admin) to make".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: Uuid::now_v7(),
            username: "u".into(),
            role,
            district_code: None,
            school_id: None,
            base_ids: vec![],
            request_id: None,
            token_id: None,
        }
    }

    #[test]
    fn operator_edits_only_its_bases() {
        let mine = Uuid::now_v7();
        let mut op = actor(Role::Operator);
        op.base_ids = vec![mine];
        assert!(authorize(&op, Action::EditBase { base_id: mine }).is_ok());
        assert!(authorize(&op, Action::EditBase { base_id: Uuid::now_v7() }).is_err());
        assert!(authorize(&op, Action::ChangeBaseStanding).is_err());
    }

    #[test]
    fn district_officer_creates_only_in_its_district() {
        let mut officer = actor(Role::DistrictOfficer);
        officer.district_code = Some("440106".into());
        assert!(authorize(&officer, Action::CreateBase { district_code: "440106" }).is_ok());
        assert!(authorize(&officer, Action::CreateBase { district_code: "440104" }).is_err());
    }

    #[test]
    fn admin_may_do_everything() {
        let admin = actor(Role::Admin);
        assert!(authorize(&admin, Action::ManageUsers).is_ok());
        assert!(authorize(&admin, Action::EditSchool { school_id: Uuid::now_v7() }).is_ok());
    }
}
