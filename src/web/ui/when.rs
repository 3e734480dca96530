//! Dates as people read them: one format everywhere, in the viewer's time zone (their own
//! setting), with the UTC time on hover; never raw RFC 3339.

use chrono::{DateTime, Utc};

/// An instant, ready for a page: `<time datetime="{{ w.iso() }}" title="{{ w.utc() }}">{{ w }}</time>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    at: DateTime<Utc>,
    zone: chrono_tz::Tz,
}

impl When {
    /// `at` shown in the IANA zone `zone` (UTC when the name is unknown).
    pub fn new(at: DateTime<Utc>, zone: &str) -> Self {
        Self {
            at,
            zone: zone.parse().unwrap_or(chrono_tz::UTC),
        }
    }

    /// Machine-readable, for the `datetime` attribute.
    pub fn iso(&self) -> String {
        self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// The same instant in UTC, for the hover title.
    pub fn utc(&self) -> String {
        self.at.format("%-d %b %Y, %H:%M UTC").to_string()
    }
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}",
            self.at
                .with_timezone(&self.zone)
                .format("%-d %b %Y, %H:%M %Z")
        )
    }
}

/// `text` (the engine's words, which write instants as `2026-09-01 06:00 UTC`) with each such
/// instant in the IANA zone `zone`, as [`When`] writes it; everything else as it was.
pub fn dates_in_text(text: &str, zone: &str) -> String {
    const LEN: usize = "2026-09-01 06:00 UTC".len();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" UTC") {
        let end = i + 4;
        let found = i
            .checked_sub(LEN - 4)
            .and_then(|start| rest.get(start..i).map(|s| (start, s)))
            .and_then(|(start, s)| {
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
                    .ok()
                    .map(|t| (start, t.and_utc()))
            });
        match found {
            Some((start, at)) => {
                out.push_str(&rest[..start]);
                out.push_str(&When::new(at, zone).to_string());
            }
            None => out.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// An audit event name (`order.package_prepared`) in words ("Package prepared").
pub fn event_words(event: &str) -> String {
    let (area, what) = event.split_once('.').unwrap_or(("", event));
    let what = what.replace('_', " ");
    let text = match area {
        "order" | "orders" | "" => what,
        "metadata" if what == "lookup" => "Lookup of a target's records".to_owned(),
        other => format!("{other} {what}"),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_the_same_everywhere_in_the_viewers_zone() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T13:05:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            When::new(at, "Europe/Paris").to_string(),
            "7 Dec 2026, 14:05 CET"
        );
        assert_eq!(When::new(at, "UTC").to_string(), "7 Dec 2026, 13:05 UTC");
        assert_eq!(
            When::new(at, "Mars/Olympus").to_string(),
            "7 Dec 2026, 13:05 UTC"
        );
        assert_eq!(When::new(at, "Europe/Paris").utc(), "7 Dec 2026, 13:05 UTC");
        assert_eq!(
            dates_in_text(
                "The deadline runs from receipt (2026-12-07 13:05 UTC): due 2026-12-17 13:05 UTC. UTC",
                "Europe/Paris"
            ),
            "The deadline runs from receipt (7 Dec 2026, 14:05 CET): due 17 Dec 2026, 14:05 CET. UTC"
        );
        assert_eq!(dates_in_text("no date UTC here", "UTC"), "no date UTC here");
        assert_eq!(event_words("order.package_prepared"), "Package prepared");
        assert_eq!(event_words("staff.login"), "Staff login");
    }
}
