//! `kepu bench lottery`: a simulated season drawn by the campaign draw ([`lottery::draw`]) at
//! 10× oversubscription, measured for fairness and speed and verified as the public would.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

use crate::domain::lottery::{self, Entrant, Inputs, Offer, Published};

/// Settings of a lottery benchmark.
#[derive(Debug, Clone)]
pub struct LotteryArgs {
    pub applicants: usize,
    pub departures: usize,
    /// Places per departure.
    pub places: i32,
    /// Departures one applicant may win.
    pub max_wins: u32,
}

/// The city's districts with skewed numbers of applicants (Zipf-like: the first has eleven
/// times the last's).
const DISTRICTS: [&str; 11] =
    ["440106", "440105", "440111", "440113", "440104", "440112", "440114", "440103", "440118", "440115", "440117"];

/// The Gini coefficient of non-negative values (0: all equal).
fn gini(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    if n == 0.0 || sum == 0.0 {
        return 0.0;
    }
    let weighted: f64 = values.iter().enumerate().map(|(i, v)| (i as f64 + 1.0) * v).sum();
    (2.0 * weighted) / (n * sum) - (n + 1.0) / n
}

/// Runs the simulation and prints one JSON object.
pub fn lottery(args: LotteryArgs) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(2026);
    let departures: Vec<Uuid> = (0..args.departures).map(|i| Uuid::from_u128(0xD0_0000 + i as u128)).collect();
    let district_weights: Vec<f64> = (1..=DISTRICTS.len()).map(|i| 1.0 / i as f64).collect();
    let total_weight: f64 = district_weights.iter().sum();
    // Schools of skewed sizes: each applicant is a pupil's family applying through a school.
    let mut schools: Vec<(usize, u32)> = Vec::new();
    let mut entrants = Vec::with_capacity(args.applicants);
    let mut school_of = HashMap::new();
    let campaign = Uuid::from_u128(0xCA);
    while entrants.len() < args.applicants {
        let mut pick = rng.random::<f64>() * total_weight;
        let district = district_weights.iter().position(|w| {
            pick -= w;
            pick <= 0.0
        });
        let district = district.unwrap_or(DISTRICTS.len() - 1);
        let size = 1 + (rng.random::<f64>().powi(3) * 120.0) as usize;
        let visits = rng.random_range(0..6u32);
        let school = schools.len();
        schools.push((district, visits));
        for _ in 0..size.min(args.applicants - entrants.len()) {
            let application = Uuid::from_u128(entrants.len() as u128 + 1);
            let pseudonym = lottery::pseudonym(campaign, application);
            // Three preferences, the popular departures likelier.
            let mut preferences = Vec::new();
            while preferences.len() < 3.min(departures.len()) {
                let d = departures[(rng.random::<f64>().powi(2) * departures.len() as f64) as usize];
                if !preferences.contains(&d) {
                    preferences.push(d);
                }
            }
            school_of.insert(pseudonym.clone(), school);
            entrants.push(Entrant {
                pseudonym,
                district: DISTRICTS[district].to_string(),
                party: 1,
                visits: Some(visits),
                preferences,
            });
        }
    }
    let inputs = Inputs {
        max_wins: args.max_wins,
        offers: departures.iter().map(|d| Offer { departure: *d, places: args.places }).collect(),
        prior_place_shares: BTreeMap::new(),
        entrants,
    };
    let seed = lottery::new_seed();
    let started = Instant::now();
    let outcome = lottery::draw(&seed, &inputs);
    let draw_ms = started.elapsed().as_secs_f64() * 1000.0;
    let published =
        Published { seed_sha256: lottery::commitment(&seed), seed, inputs, outcome, applied: Default::default() };
    let started = Instant::now();
    let verification = lottery::verify(&published);
    let verify_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut tampered = published.clone();
    tampered.outcome.order.swap(0, 1);
    let tampered_fails = !lottery::verify(&tampered).matches;

    let places = args.places as usize * args.departures;
    let applicants = published.inputs.entrants.len();
    let mut wins_of: HashMap<&str, usize> = HashMap::new();
    for w in &published.outcome.wins {
        *wins_of.entry(w.pseudonym.as_str()).or_default() += 1;
    }
    let with_a_place = wins_of.len();
    let mut by_district: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for e in &published.inputs.entrants {
        let d = by_district.entry(e.district.as_str()).or_default();
        d.0 += 1.0;
        d.1 += wins_of.get(e.pseudonym.as_str()).copied().unwrap_or(0) as f64;
    }
    let won = published.outcome.wins.len() as f64;
    let deviation: BTreeMap<&str, f64> = by_district
        .iter()
        .map(|(d, (n, w))| (*d, ((w / won - n / applicants as f64) * 1000.0).round() / 10.0))
        .collect();
    let mut per_school: Vec<(f64, f64)> = vec![(0.0, 0.0); schools.len()];
    for e in &published.inputs.entrants {
        let s = &mut per_school[school_of[&e.pseudonym]];
        s.0 += 1.0;
        s.1 += wins_of.get(e.pseudonym.as_str()).copied().unwrap_or(0) as f64;
    }
    let mut rates: Vec<f64> = per_school.iter().filter(|(n, _)| *n > 0.0).map(|(n, w)| w / n).collect();
    let mut counts: Vec<f64> = per_school.iter().map(|(_, w)| *w).collect();
    let round = |x: f64| (x * 1e4).round() / 1e4;
    println!(
        "{}",
        json!({
            "bench": "lottery",
            "applicants": applicants,
            "schools": schools.len(),
            "departures": args.departures,
            "places": places,
            "oversubscription": round(applicants as f64 / places as f64),
            "share_with_a_place": round(with_a_place as f64 / applicants as f64),
            "expected_share": round((places as f64 / applicants as f64).min(1.0)),
            "places_given": published.outcome.wins.len(),
            "district_share_of_places_minus_share_of_applicants_points": deviation,
            "max_district_deviation_points": deviation.values().fold(0.0f64, |m, v| m.max(v.abs())),
            "gini_of_places_per_school": round(gini(&mut counts)),
            "gini_of_win_rate_per_school": round(gini(&mut rates)),
            "draw_ms": round(draw_ms),
            "verify_ms": round(verify_ms),
            "verification_matches": verification.matches,
            "tampered_order_fails_verification": tampered_fails,
        })
    );
    Ok(())
}
