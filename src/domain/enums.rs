//! The closed vocabularies of the domain (roles, categories, statuses, …), stored as strings.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a string-valued enum with its wire names, parsing, and the list of all values.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses a wire name; the error lists the accepted values.
            pub fn parse(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(format!("must be one of: {}", [$($wire),+].join(", "))),
                }
            }

            /// Reads a stored value; storage is written only by this code, so a bad value is a bug.
            pub fn from_db(s: &str) -> Self {
                Self::parse(s).unwrap_or_else(|_| panic!("corrupt {} value in database: {s}", stringify!($name)))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What an account may do.
    Role {
        Admin = "admin",
        DistrictOfficer = "district_officer",
        Evaluator = "evaluator",
        Operator = "operator",
        School = "school",
    }
);

string_enum!(
    /// 场馆类 / 非场馆类.
    Category { Venue = "venue", NonVenue = "non_venue" }
);

string_enum!(
    /// The kind of host a base is.
    Subcategory {
        ScienceVenue = "science_venue",
        EducationResearch = "education_research",
        PublicPlace = "public_place",
        ProductionFacility = "production_facility",
        Agriculture = "agriculture",
        Enterprise = "enterprise",
        NaturalResource = "natural_resource",
        Other = "other",
    }
);

string_enum!(
    /// Where a base stands in accreditation.
    BaseStatus {
        Applicant = "applicant",
        Accredited = "accredited",
        Rectification = "rectification",
        Revoked = "revoked",
        Expired = "expired",
    }
);

string_enum!(
    /// Grade bands (and adults) a base, exhibit or session serves.
    Audience {
        Preschool = "preschool",
        PrimaryLower = "primary_lower",
        PrimaryUpper = "primary_upper",
        Junior = "junior",
        Senior = "senior",
        Adult = "adult",
    }
);

string_enum!(
    /// How an exhibit is experienced.
    ExhibitKind {
        Interactive = "interactive",
        Static = "static",
        Multimedia = "multimedia",
        Specimen = "specimen",
        Live = "live",
    }
);

string_enum!(
    /// Whether an exhibit can be seen now.
    ExhibitStatus {
        OnDisplay = "on_display",
        Maintenance = "maintenance",
        Retired = "retired",
        OnLoan = "on_loan",
    }
);

string_enum!(
    /// Where an exhibit loan (展品共享) stands.
    LoanStatus {
        Requested = "requested",
        Approved = "approved",
        Declined = "declined",
        Cancelled = "cancelled",
        OnLoan = "on_loan",
        Returned = "returned",
    }
);

string_enum!(
    /// The state a lent exhibit comes back in.
    ReturnCondition { Good = "good", Damaged = "damaged" }
);

string_enum!(
    /// The stages a school teaches.
    SchoolKind { Primary = "primary", Middle = "middle", High = "high", Combined = "combined" }
);

string_enum!(
    /// What a capacity pool counts: visitors (students + teachers) or groups (one per booking).
    PoolUnit { Visitors = "visitors", Groups = "groups" }
);

string_enum!(
    /// Whether a session takes bookings.
    SessionStatus { Open = "open", Closed = "closed", Cancelled = "cancelled" }
);

string_enum!(
    /// Where a booking stands.
    BookingStatus {
        Confirmed = "confirmed",
        Waitlisted = "waitlisted",
        CheckedIn = "checked_in",
        Cancelled = "cancelled",
        NoShow = "no_show",
        Expired = "expired",
    }
);

impl BookingStatus {
    /// Statuses that hold places in the session's pools.
    pub const HOLDING: &'static [BookingStatus] =
        &[BookingStatus::Confirmed, BookingStatus::CheckedIn, BookingStatus::NoShow];
    /// Statuses of a booking that is still going to happen.
    pub const ACTIVE: &'static [BookingStatus] = &[BookingStatus::Confirmed, BookingStatus::Waitlisted];

    pub fn names(list: &[BookingStatus]) -> Vec<&'static str> {
        list.iter().map(|s| s.as_str()).collect()
    }
}

string_enum!(
    /// Where an accreditation application stands.
    AccreditationStatus {
        Draft = "draft",
        Submitted = "submitted",
        DistrictRecommended = "district_recommended",
        Rejected = "rejected",
        ExpertReview = "expert_review",
        PublicNotice = "public_notice",
        Accredited = "accredited",
    }
);

string_enum!(
    /// An objection's outcome.
    ObjectionStatus { Open = "open", Upheld = "upheld", Dismissed = "dismissed" }
);

string_enum!(
    /// An annual evaluation, or the re-evaluation after rectification.
    EvaluationKind { Annual = "annual", ReEvaluation = "re_evaluation" }
);

string_enum!(
    /// Whether an evaluation can still change.
    EvaluationStatus { Open = "open", Finalized = "finalized" }
);

string_enum!(
    /// 优秀 / 良好 / 合格 / 不合格.
    Grade { Excellent = "excellent", Good = "good", Pass = "pass", Fail = "fail" }
);

string_enum!(
    /// The kinds of sign of the signage standard.
    SignKind { Plaque = "plaque", RoadGuide = "road_guide", Wayfinding = "wayfinding" }
);

string_enum!(
    /// Where a sign stands, from application to removal.
    SignStatus {
        Requested = "requested",
        Approved = "approved",
        Rejected = "rejected",
        Installed = "installed",
        UpdateDue = "update_due",
        RemovalDue = "removal_due",
        Replaced = "replaced",
        Removed = "removed",
    }
);

string_enum!(
    /// What an inspection found.
    SignCondition { Good = "good", Damaged = "damaged", Missing = "missing", Obstructed = "obstructed" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for s in Subcategory::ALL {
            assert_eq!(Subcategory::parse(s.as_str()), Ok(*s));
        }
        assert_eq!(serde_json::to_string(&Role::DistrictOfficer).unwrap(), "\"district_officer\"");
    }

    #[test]
    fn serde_names_are_the_stored_names() {
        fn check<T: Serialize + Copy>(all: &[T], name: impl Fn(T) -> &'static str) {
            for v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), name(*v));
            }
        }
        check(Role::ALL, Role::as_str);
        check(Category::ALL, Category::as_str);
        check(Subcategory::ALL, Subcategory::as_str);
        check(BaseStatus::ALL, BaseStatus::as_str);
        check(Audience::ALL, Audience::as_str);
        check(ExhibitKind::ALL, ExhibitKind::as_str);
        check(ExhibitStatus::ALL, ExhibitStatus::as_str);
        check(LoanStatus::ALL, LoanStatus::as_str);
        check(ReturnCondition::ALL, ReturnCondition::as_str);
        check(SchoolKind::ALL, SchoolKind::as_str);
        check(PoolUnit::ALL, PoolUnit::as_str);
        check(SessionStatus::ALL, SessionStatus::as_str);
        check(BookingStatus::ALL, BookingStatus::as_str);
        check(AccreditationStatus::ALL, AccreditationStatus::as_str);
        check(ObjectionStatus::ALL, ObjectionStatus::as_str);
        check(EvaluationKind::ALL, EvaluationKind::as_str);
        check(EvaluationStatus::ALL, EvaluationStatus::as_str);
        check(Grade::ALL, Grade::as_str);
        check(SignKind::ALL, SignKind::as_str);
        check(SignStatus::ALL, SignStatus::as_str);
        check(SignCondition::ALL, SignCondition::as_str);
    }

    #[test]
    fn unknown_value_lists_the_accepted_ones() {
        let err = Category::parse("museum").unwrap_err();
        assert_eq!(err, "must be one of: venue, non_venue");
    }
}
