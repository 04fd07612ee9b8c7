//! The fair, verifiable draw of a sign-up campaign: pure functions, no database, so that
//! anybody holding the published draw can compute it again ([`verify`]).
//!
//! 1. **Commit–reveal.** A 32-byte seed is drawn from a cryptographically secure generator
//!    (`rand`'s thread generator, seeded by the operating system) when
//!    the campaign is made, and only its SHA-256 ([`commitment`]) is published until the draw.
//!    Nobody, the bureau included, can pick a seed after seeing the applicants.
//! 2. **Weights** ([`weight`], published with their inputs): `visit_factor × district_factor`,
//!    where `visit_factor = 1 / (1 + v)` for a school with `v` visits to bases this school year
//!    (1 for a citizen), and `district_factor = clamp(a / p, 1, 2)` for an applicant's district
//!    whose share of this campaign's applicants is `a` and whose share of the places won in the
//!    school year's earlier draws is `p` (1 when there were none): districts below their share
//!    are lifted, none is lowered.
//! 3. **Order**: Efraimidis–Spirakis weighted random order. Each applicant's uniform number
//!    `u` in (0, 1) comes from `SHA-256(seed ‖ pseudonym)`; its key is `ln(u) / weight`; the
//!    order is by key, largest first (ties by pseudonym). A higher weight makes an earlier
//!    place likelier, never certain.
//! 4. **Rounds**: in each round every applicant, in draw order, gets at most one departure —
//!    the first of its preferences it has not won yet that still has room for its party — up
//!    to its `max_wins`. No one wins a second departure while another could still win a first.
//!    Applicants who won nothing wait, in draw order.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The version of the rules above; a published draw names it.
pub const RULES: &str = "kepu-draw-1";
/// The most a district's factor lifts its applicants' weight.
pub const MAX_DISTRICT_FACTOR: f64 = 2.0;

/// A 32-byte seed, hex-encoded.
pub fn new_seed() -> String {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    hex(&seed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The published commitment to a seed: the hex SHA-256 of its hex text.
pub fn commitment(seed: &str) -> String {
    hex(&Sha256::digest(seed.as_bytes()))
}

/// The name an application goes by in the published draw: 16 hex digits of
/// `SHA-256("kepu-applicant" ‖ campaign ‖ application)`, which says nothing about who applied
/// and which the applicant, knowing its application id, can find itself under.
pub fn pseudonym(campaign: Uuid, application: Uuid) -> String {
    let mut h = Sha256::new();
    h.update(b"kepu-applicant");
    h.update(campaign.as_bytes());
    h.update(application.as_bytes());
    hex(&h.finalize()[..8])
}

/// The uniform number in (0, 1) of a pseudonym under a seed.
pub fn uniform(seed: &str, pseudonym: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update(b"|");
    h.update(pseudonym.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    // 53 random bits, shifted off zero and one.
    ((u64::from_be_bytes(first) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// An applicant as the draw sees it (and as it is published).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawEntrant)]
pub struct Entrant {
    pub pseudonym: String,
    /// The district code it applied from.
    pub district: String,
    /// People in its party (a school's students and teachers, or a family of 1–4).
    pub party: i32,
    /// A school's visits to bases this school year; `None` for a citizen.
    pub visits: Option<u32>,
    /// Departures (tour ids) it wants, best first.
    pub preferences: Vec<Uuid>,
}

/// A departure of the campaign and the places it offers to the draw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawOffer)]
pub struct Offer {
    pub departure: Uuid,
    pub places: i32,
}

/// Everything the draw depends on besides the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawInputs)]
pub struct Inputs {
    /// Departures one applicant may win at most.
    pub max_wins: u32,
    pub offers: Vec<Offer>,
    /// Each district's share of the places won in the school year's earlier draws (empty:
    /// none yet).
    pub prior_place_shares: BTreeMap<String, f64>,
    pub entrants: Vec<Entrant>,
}

/// An entrant's place in the draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawRank)]
pub struct Ranked {
    pub pseudonym: String,
    pub weight: f64,
    pub key: f64,
}

/// A departure won, and in which round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawWin)]
pub struct Win {
    pub pseudonym: String,
    pub departure: Uuid,
    pub round: u32,
}

/// The outcome of a draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawOutcome)]
pub struct Outcome {
    pub rules: String,
    /// Each district's factor.
    pub district_factors: BTreeMap<String, f64>,
    /// Every entrant, in draw order.
    pub order: Vec<Ranked>,
    /// What was won, in the order it was given.
    pub wins: Vec<Win>,
    /// Entrants who won nothing, in draw order: the waiting list.
    pub waiting: Vec<String>,
}

/// Each district's factor (see the module's description).
pub fn district_factors(inputs: &Inputs) -> BTreeMap<String, f64> {
    let total = inputs.entrants.len() as f64;
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for e in &inputs.entrants {
        *counts.entry(e.district.clone()).or_default() += 1.0;
    }
    counts
        .into_iter()
        .map(|(d, n)| {
            let factor = match inputs.prior_place_shares.is_empty() {
                true => 1.0,
                false => {
                    let share = n / total;
                    let prior = inputs.prior_place_shares.get(&d).copied().unwrap_or(0.0);
                    if prior <= 0.0 { MAX_DISTRICT_FACTOR } else { (share / prior).clamp(1.0, MAX_DISTRICT_FACTOR) }
                }
            };
            (d, round6(factor))
        })
        .collect()
}

/// Rounds to six decimals, so that a weight survives being published as JSON.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// An entrant's weight.
pub fn weight(e: &Entrant, district_factors: &BTreeMap<String, f64>) -> f64 {
    let visit_factor = e.visits.map_or(1.0, |v| 1.0 / (1.0 + f64::from(v)));
    round6(visit_factor * district_factors.get(&e.district).copied().unwrap_or(1.0))
}

/// Orders entrants by their Efraimidis–Spirakis keys under `seed`.
fn rank(seed: &str, entrants: &[Entrant], factors: &BTreeMap<String, f64>) -> Vec<Ranked> {
    let mut order: Vec<Ranked> = entrants
        .iter()
        .map(|e| {
            let w = weight(e, factors);
            Ranked { pseudonym: e.pseudonym.clone(), weight: w, key: uniform(seed, &e.pseudonym).ln() / w }
        })
        .collect();
    order.sort_by(|a, b| b.key.total_cmp(&a.key).then_with(|| a.pseudonym.cmp(&b.pseudonym)));
    order
}

/// Gives places in rounds, in `order` (see the module's description).
fn allocate(inputs: &Inputs, order: &[Ranked]) -> (Vec<Win>, Vec<String>) {
    let mut room: HashMap<Uuid, i32> = inputs.offers.iter().map(|o| (o.departure, o.places)).collect();
    let by_name: HashMap<&str, &Entrant> = inputs.entrants.iter().map(|e| (e.pseudonym.as_str(), e)).collect();
    let mut won: HashMap<&str, HashSet<Uuid>> = HashMap::new();
    let mut wins = Vec::new();
    for round in 1..=inputs.max_wins {
        let mut given = false;
        for r in order {
            let Some(e) = by_name.get(r.pseudonym.as_str()) else { continue };
            let mine = won.entry(e.pseudonym.as_str()).or_default();
            if mine.len() as u32 >= round {
                continue;
            }
            let pick =
                e.preferences.iter().find(|d| !mine.contains(*d) && room.get(*d).is_some_and(|left| *left >= e.party));
            if let Some(&d) = pick {
                if let Some(left) = room.get_mut(&d) {
                    *left -= e.party;
                }
                mine.insert(d);
                wins.push(Win { pseudonym: e.pseudonym.clone(), departure: d, round });
                given = true;
            }
        }
        if !given {
            break;
        }
    }
    let waiting = order
        .iter()
        .filter(|r| won.get(r.pseudonym.as_str()).is_none_or(|w| w.is_empty()))
        .map(|r| r.pseudonym.clone())
        .collect();
    (wins, waiting)
}

/// Runs the draw.
pub fn draw(seed: &str, inputs: &Inputs) -> Outcome {
    let district_factors = district_factors(inputs);
    let order = rank(seed, &inputs.entrants, &district_factors);
    let (wins, waiting) = allocate(inputs, &order);
    Outcome { rules: RULES.into(), district_factors, order, wins, waiting }
}

/// A published draw: the commitment, the seed revealed, the inputs and the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = PublishedDraw)]
pub struct Published {
    pub seed_sha256: String,
    pub seed: String,
    pub inputs: Inputs,
    pub outcome: Outcome,
    /// What happened when the places were given, beyond the rules above: wins refused (a
    /// school's booking rule stood in the way, or the tour stopped taking bookings) and the
    /// room they left given to waiting applicants in draw order. Not recomputed by [`verify`].
    #[serde(default)]
    pub applied: Applied,
}

/// A win that could not be given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawRefusal)]
pub struct Refusal {
    pub pseudonym: String,
    pub departure: Uuid,
    /// The rule, e.g. `overlapping-booking`.
    pub reason: String,
}

/// How the outcome was applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawApplied)]
pub struct Applied {
    pub refused: Vec<Refusal>,
    /// Departures given from the waiting list, in the order given.
    pub from_waiting_list: Vec<Win>,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DrawVerification)]
pub struct Verification {
    pub matches: bool,
    /// What differs, in words (empty when it matches).
    pub problems: Vec<String>,
}

/// Computes the draw again from a published one and says whether everything matches: the
/// seed against its commitment, every weight against its inputs, the order, the wins and the
/// waiting list.
pub fn verify(p: &Published) -> Verification {
    let mut problems = Vec::new();
    if commitment(&p.seed) != p.seed_sha256 {
        problems.push("the seed does not hash to the commitment published before the draw".to_string());
    }
    let again = draw(&p.seed, &p.inputs);
    if again.rules != p.outcome.rules {
        problems.push(format!("the draw names rules {}, this verifier knows {}", p.outcome.rules, again.rules));
    }
    if again.district_factors != p.outcome.district_factors {
        problems.push("the district factors differ from those the inputs give".into());
    }
    let published: HashMap<&str, &Ranked> = p.outcome.order.iter().map(|r| (r.pseudonym.as_str(), r)).collect();
    for r in &again.order {
        match published.get(r.pseudonym.as_str()) {
            Some(q) if (q.weight - r.weight).abs() > 1e-9 => {
                problems.push(format!("{}: weight {} published, {} from its inputs", r.pseudonym, q.weight, r.weight));
            }
            None => problems.push(format!("{}: an entrant missing from the published order", r.pseudonym)),
            _ => {}
        }
    }
    let names = |o: &[Ranked]| o.iter().map(|r| r.pseudonym.clone()).collect::<Vec<_>>();
    if names(&again.order) != names(&p.outcome.order) {
        problems.push("the published order is not the order the seed and weights give".into());
    }
    if again.wins != p.outcome.wins {
        problems.push("the published places are not those the order gives".into());
    }
    if again.waiting != p.outcome.waiting {
        problems.push("the published waiting list is not the one the order gives".into());
    }
    Verification { matches: problems.is_empty(), problems }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entrants(n: usize, departures: &[Uuid]) -> Vec<Entrant> {
        (0..n)
            .map(|i| Entrant {
                pseudonym: pseudonym(Uuid::nil(), Uuid::from_u128(i as u128 + 1)),
                district: format!("4401{:02}", i % 3),
                party: 1 + (i % 4) as i32,
                visits: (i % 2 == 0).then_some((i % 5) as u32),
                preferences: departures
                    .iter()
                    .cycle()
                    .skip(i % departures.len())
                    .take(departures.len())
                    .copied()
                    .collect(),
            })
            .collect()
    }

    fn inputs(n: usize, places: i32, max_wins: u32) -> Inputs {
        let departures: Vec<Uuid> = (0..4).map(|i| Uuid::from_u128(1000 + i)).collect();
        Inputs {
            max_wins,
            offers: departures.iter().map(|d| Offer { departure: *d, places }).collect(),
            prior_place_shares: BTreeMap::new(),
            entrants: entrants(n, &departures),
        }
    }

    #[test]
    fn the_same_seed_and_inputs_give_the_same_draw_and_another_seed_another() {
        let i = inputs(200, 30, 2);
        let seed = new_seed();
        assert_eq!(draw(&seed, &i), draw(&seed, &i));
        assert_ne!(draw(&seed, &i).order, draw(&new_seed(), &i).order);
    }

    #[test]
    fn nobody_wins_twice_while_someone_who_could_win_once_has_nothing() {
        let i = inputs(300, 40, 3);
        let out = draw(&new_seed(), &i);
        let mut count: HashMap<&str, usize> = HashMap::new();
        for w in &out.wins {
            *count.entry(&w.pseudonym).or_default() += 1;
        }
        let first_round_over = out.wins.iter().position(|w| w.round == 2).unwrap_or(out.wins.len());
        // Whoever waits could not have fitted any departure once round 1 was over.
        assert!(first_round_over > 0);
        for w in &out.waiting {
            assert!(!count.contains_key(w.as_str()));
        }
        assert!(out.wins.iter().all(|w| w.round <= 3));
        // No departure over its places.
        for o in &i.offers {
            let taken: i32 = out
                .wins
                .iter()
                .filter(|w| w.departure == o.departure)
                .map(|w| i.entrants.iter().find(|e| e.pseudonym == w.pseudonym).unwrap().party)
                .sum();
            assert!(taken <= o.places);
        }
    }

    #[test]
    fn a_published_draw_verifies_and_any_change_fails() {
        let i = inputs(100, 20, 2);
        let seed = new_seed();
        let published = Published {
            seed_sha256: commitment(&seed),
            seed: seed.clone(),
            inputs: i.clone(),
            outcome: draw(&seed, &i),
            applied: Applied::default(),
        };
        assert_eq!(verify(&published), Verification { matches: true, problems: vec![] });
        let mut other_seed = published.clone();
        other_seed.seed = new_seed();
        assert!(!verify(&other_seed).matches);
        let mut heavier = published.clone();
        heavier.outcome.order[5].weight *= 2.0;
        assert!(!verify(&heavier).matches);
        let mut swapped = published.clone();
        swapped.outcome.order.swap(0, 1);
        assert!(!verify(&swapped).matches);
        let mut more_visits = published.clone();
        more_visits.inputs.entrants[0].visits = Some(99);
        assert!(!verify(&more_visits).matches);
    }

    #[test]
    fn weights_follow_the_published_formula() {
        let mut prior = BTreeMap::new();
        prior.insert("440101".to_string(), 0.5);
        prior.insert("440102".to_string(), 0.5);
        let mut i = inputs(90, 10, 1);
        i.prior_place_shares = prior;
        let f = district_factors(&i);
        // Each of the three districts has a third of the applicants: 440100 had no places
        // before (lifted fully), the others had half each (a third / a half < 1: not lowered).
        assert_eq!(f["440100"], MAX_DISTRICT_FACTOR);
        assert_eq!(f["440101"], 1.0);
        let school = Entrant { visits: Some(3), ..i.entrants[0].clone() };
        assert_eq!(weight(&school, &f), round6(0.25 * f[&school.district]));
        let citizen = Entrant { visits: None, ..i.entrants[0].clone() };
        assert_eq!(weight(&citizen, &f), f[&citizen.district]);
    }
}
