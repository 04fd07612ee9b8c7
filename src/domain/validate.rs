//! Collects every broken rule of a request, each naming its field, into one 422.

use crate::error::{AppError, FieldError};

#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    pub fn extend(&mut self, errors: Vec<FieldError>) {
        self.errors.extend(errors);
    }

    /// Keeps the value, or records the error and gives `None`.
    pub fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(m) => {
                self.push(field, m);
                None
            }
        }
    }

    /// A non-blank text of at most `max` characters, trimmed (see [`text`]).
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> Option<String> {
        self.check(field, text(value, max))
    }

    /// An optional text: `None` stays `None`; blank (of at most `max` characters) becomes
    /// `None`.
    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max: usize) -> Option<Option<String>> {
        match value {
            None => Some(None),
            Some(v) if v.trim().is_empty() && v.chars().count() <= max => Some(None),
            Some(v) => self.text(field, v, max).map(Some),
        }
    }

    /// A year within [`YEARS`].
    pub fn year(&mut self, field: &str, year: i32) -> Option<i32> {
        self.range(field, year, *YEARS.start(), *YEARS.end())
    }

    /// A number within `[min, max]`.
    pub fn range<T: PartialOrd + std::fmt::Display + Copy>(&mut self, field: &str, v: T, min: T, max: T) -> Option<T> {
        if v >= min && v <= max {
            Some(v)
        } else {
            self.push(field, format!("must be between {min} and {max}"));
            None
        }
    }

    /// Every item parsed; duplicates dropped, order kept.
    pub fn list<T: PartialEq>(
        &mut self,
        field: &str,
        items: &[String],
        max_items: usize,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        if items.len() > max_items {
            self.push(field, format!("at most {max_items} items"));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match parse(item) {
                Ok(v) if !out.contains(&v) => out.push(v),
                Ok(_) => {}
                Err(m) => {
                    self.push(format!("{field}[{i}]"), m);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Ends validation: `Ok(())` when nothing broke, else one 422 listing every field.
    pub fn finish(self) -> Result<(), AppError> {
        if self.errors.is_empty() { Ok(()) } else { Err(AppError::Validation(self.errors)) }
    }
}

/// The items without repeats, in the order they first appear.
pub fn unique<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The years the service stores and compares. Anything else is a typo (and some databases
/// cannot store it).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2999;

/// A time within [`YEARS`].
pub fn sane_time(field: &str, t: Option<chrono::DateTime<chrono::Utc>>) -> Result<(), AppError> {
    use chrono::Datelike;
    match t {
        Some(t) if !YEARS.contains(&t.year()) => Err(AppError::field(
            field,
            format!("must be a time between the years {} and {}", YEARS.start(), YEARS.end()),
        )),
        _ => Ok(()),
    }
}

/// A trimmed, non-blank text of at most `max` characters, or a 422 naming `field`.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    text(value, max).map_err(|m| AppError::field(field, m))
}

/// What [`text`] accepts, as a JSON Schema (ECMA-262) `pattern` for the OpenAPI document: some
/// character other than white space, and no control character (Unicode `Cc`) except white
/// space at either end, which is trimmed off. The white space is Unicode's `White_Space`, which
/// `str::trim` removes, spelled out: `\s` differs between regex dialects.
pub const TEXT_PATTERN: &str = concat!(
    r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    r"[^\x00-\x1f\x7f-\x9f]*",
    r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
);

/// What [`Validator::opt_text`] accepts: as [`TEXT_PATTERN`], or only white space (read as
/// absent).
pub const OPTIONAL_TEXT_PATTERN: &str = concat!(
    r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"([^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    r"[^\x00-\x1f\x7f-\x9f]*",
    r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$",
);

/// Why a time in a leap second is refused.
pub const LEAP_SECOND: &str = "must not be in a leap second (:60); give :59.999 or the next minute";

/// Whether `value` is an RFC 3339 time in a leap second (`2016-12-31T23:59:60Z`), which chrono
/// reads as a 61st second that neither database orders as time.
pub fn is_leap_second(value: &str) -> bool {
    use chrono::Timelike;
    chrono::DateTime::parse_from_rfc3339(value.trim()).is_ok_and(|t| t.nanosecond() >= 1_000_000_000)
}

/// A non-blank text of at most `max` characters (counted as sent, as the documented
/// `maxLength` counts them), trimmed.
pub fn text(value: &str, max: usize) -> Result<String, String> {
    let v = value.trim();
    if value.chars().count() > max {
        Err(format!("must be at most {max} characters"))
    } else if v.is_empty() {
        Err("must not be blank".into())
    } else if v.chars().any(|c| c.is_control()) {
        Err("must not contain control characters".into())
    } else {
        Ok(v.to_string())
    }
}

/// A plausible e-mail address (one `@`, a dotted domain, no spaces).
pub fn email(value: &str) -> Result<String, String> {
    let v = text(value, 254)?;
    let ok = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !v.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    };
    if ok { Ok(v) } else { Err("must be an e-mail address such as info@example.org".into()) }
}

/// What [`phone`] accepts, as a pattern for the OpenAPI document (with `maxLength` 32): 5 to
/// 20 digits among `+`, spaces, dashes and parentheses, with white space at either end.
pub const PHONE_PATTERN: &str = concat!(
    r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"[+()\- ]*([0-9][+()\- ]*){5,20}",
    r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
);

/// What [`opt_phone`] accepts: as [`PHONE_PATTERN`], or only white space (read as absent).
pub const OPTIONAL_PHONE_PATTERN: &str = concat!(
    r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
    r"([+()\- ]*([0-9][+()\- ]*){5,20}",
    r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$",
);

/// An optional phone number: `None`, or blank (of at most 32 characters), is none.
pub fn opt_phone(value: Option<&str>) -> Result<Option<String>, String> {
    match value {
        Some(v) if !(v.trim().is_empty() && v.chars().count() <= 32) => phone(v).map(Some),
        _ => Ok(None),
    }
}

/// A phone number: digits with optional `+`, spaces, dashes and parentheses, 5 to 20 digits.
pub fn phone(value: &str) -> Result<String, String> {
    let v = text(value, 32)?;
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let allowed = v.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if allowed && (5..=20).contains(&digits) {
        Ok(v)
    } else {
        Err("must be a phone number such as 020-8324 1234".into())
    }
}

/// A mainland mobile number (11 digits starting with 1, an optional +86 before), as its 11
/// digits: the form one phone number is known by, however it was typed.
pub fn mobile(value: &str) -> Result<String, String> {
    let bad = || "must be a mobile number such as 138 0013 8000".to_string();
    let v = text(value, 32).map_err(|_| bad())?;
    if !v.chars().all(|c| c.is_ascii_digit() || " +-".contains(c)) {
        return Err(bad());
    }
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.strip_prefix("86") {
        Some(rest) if v.trim_start().starts_with('+') || digits.len() == 13 => rest.to_string(),
        _ => digits,
    };
    if digits.len() == 11 && digits.starts_with('1') && !digits.starts_with("10") && !digits.starts_with("11") {
        Ok(digits)
    } else {
        Err(bad())
    }
}

/// A phone number as shown to everyone but the bureau: its first three and last two digits.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 7 {
        return "*".repeat(digits.len());
    }
    let (head, tail) = (&digits[..3], &digits[digits.len() - 2..]);
    format!("{}{}{}", head.iter().collect::<String>(), "*".repeat(digits.len() - 5), tail.iter().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_are_read_as_their_eleven_digits_and_masked() {
        assert_eq!(mobile("138 0013 8000").as_deref(), Ok("13800138000"));
        assert_eq!(mobile("+86 138-0013-8000").as_deref(), Ok("13800138000"));
        assert!(mobile("020-8324 1234").is_err());
        assert!(mobile("1380013800").is_err());
        assert!(mobile("phone").is_err());
        assert_eq!(mask_phone("13800138000"), "138******00");
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("  科学中心 ", 10), Ok("科学中心".into()));
        assert!(text("   ", 10).is_err());
        assert!(text("abcdef", 5).is_err());
        assert!(text(" abcde", 5).is_err(), "the length is counted before trimming, as maxLength counts");
        assert!(text("a\u{0}b", 5).is_err());
    }

    /// Every control character and every kind of white space, alone, at either end, inside,
    /// and next to each other, in texts and in phone numbers: the documented patterns accept
    /// exactly what the rules do.
    #[test]
    fn the_patterns_say_what_the_rules_accept() {
        use regex_automata::dfa::{Automaton, dense};
        let odd: Vec<char> = (0u32..=0xa0)
            .chain([0x1680, 0x2000, 0x200a, 0x200b, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff])
            .filter_map(char::from_u32)
            .filter(|c| c.is_control() || c.is_whitespace() || !c.is_ascii_alphanumeric())
            .collect();
        let mut samples = vec![String::new(), "科学 中心".into()];
        for core in ["a", "020-3934 8080", "+86 (20) 3934-8080", "1234", "12345", "+++++", "123456789012345678901"] {
            samples.push(core.into());
            for &c in &odd {
                samples.extend([
                    format!("{c}"),
                    format!("{c}{core}"),
                    format!("{core}{c}"),
                    format!(" {c} {core} {c} "),
                ]);
                samples.extend([format!("{core}{c}{core}"), format!("{c}{c}")]);
                for &d in &[' ', '\t', '\u{3000}', '\u{85}', '\u{1}'] {
                    samples.extend([format!("{c}{d}{core}{d}{c}"), format!("{d}{c}")]);
                }
            }
        }
        type Rule = fn(&str) -> bool;
        let rules: [(&str, &str, Rule); 4] = [
            ("TEXT_PATTERN", TEXT_PATTERN, |s| text(s, 100).is_ok()),
            ("OPTIONAL_TEXT_PATTERN", OPTIONAL_TEXT_PATTERN, |s| s.trim().is_empty() || text(s, 100).is_ok()),
            ("PHONE_PATTERN", PHONE_PATTERN, |s| phone(s).is_ok()),
            ("OPTIONAL_PHONE_PATTERN", OPTIONAL_PHONE_PATTERN, |s| opt_phone(Some(s)).is_ok()),
        ];
        let mut wrong = Vec::new();
        for (name, pattern, rule) in &rules {
            let dfa = dense::DFA::new(pattern).expect("a pattern the regex crates read");
            for s in samples.iter().filter(|s| s.chars().count() <= 32) {
                let matches = dfa.try_search_fwd(&regex_automata::Input::new(s)).expect("a search").is_some();
                if matches != rule(s) {
                    wrong.push(format!("{name} on {s:?}"));
                }
            }
        }
        assert!(wrong.is_empty(), "the patterns disagree with the rules: {}", wrong.join(", "));
    }

    #[test]
    fn leap_seconds_are_found_in_any_offset() {
        assert!(is_leap_second("2016-12-31T23:59:60Z"));
        assert!(is_leap_second("2017-01-01T07:59:60.5+08:00"));
        assert!(!is_leap_second("2016-12-31T23:59:59Z"));
        assert!(!is_leap_second("23:59:60"));
        assert!(!is_leap_second("a text"));
    }

    #[test]
    fn unique_keeps_the_first_of_repeats_anywhere() {
        assert_eq!(unique(vec![3, 1, 3, 2, 1]), vec![3, 1, 2]);
    }

    #[test]
    fn emails_and_phones() {
        assert!(email("info@gzsc.org.cn").is_ok());
        assert!(email("info@localhost").is_err());
        assert!(email("a b@x.cn").is_err());
        assert!(phone("020-3934 8080").is_ok());
        assert!(phone("+86 (20) 3934-8080").is_ok());
        assert!(phone("call me").is_err());
    }

    #[test]
    fn list_reports_the_index_of_a_bad_item() {
        let mut v = Validator::new();
        let r = v.list("audiences", &["junior".into(), "x".into()], 6, crate::domain::enums::Audience::parse);
        assert!(r.is_none());
        let err = v.finish().unwrap_err();
        match err {
            AppError::Validation(e) => assert_eq!(e[0].field, "audiences[1]"),
            _ => panic!(),
        }
    }
}
