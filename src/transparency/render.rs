//! The report's folder: a static HTML page with server-rendered SVG charts (no script, no
//! external asset, printable), a CSV and a JSON file per table, a methodology text generated
//! from the settings, the signed checkpoint, and `report.json` with everything.
//!
//! Every file is a function of the [`Report`] alone, and the charts of the *published* cells
//! alone (a banded `<10` is drawn as an outlined bar up to 10, never at its true height), so
//! that a chart tells no more than the tables and a reader can regenerate every byte.

use std::fmt::Write as _;

use super::band::drawable;
use super::{Report, Table};

/// Every file of the folder, name and bytes, in a fixed order.
pub fn files(report: &Report) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    out.push(("index.html".to_owned(), html(report).into_bytes()));
    out.push((
        "methodology.txt".to_owned(),
        methodology(report).into_bytes(),
    ));
    out.push((
        "checkpoint.txt".to_owned(),
        report.log.checkpoint.clone().into_bytes(),
    ));
    for t in &report.tables {
        out.push((format!("{}.csv", t.name), csv(t).into_bytes()));
        let json = serde_json::to_string_pretty(t).unwrap_or_default() + "\n";
        out.push((format!("{}.json", t.name), json.into_bytes()));
    }
    let json = serde_json::to_string_pretty(report).unwrap_or_default() + "\n";
    out.push(("report.json".to_owned(), json.into_bytes()));
    out
}

/// A table as CSV (RFC 4180): the column row, then one row per row.
pub fn csv(t: &Table) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record(&t.columns);
    for row in &t.rows {
        let _ = w.write_record(row);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// Reads a table back from its CSV (its title is not in the CSV).
pub fn parse_csv(name: &str, text: &str) -> Result<Table, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let columns = r
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        rows.push(rec.iter().map(str::to_owned).collect());
    }
    Ok(Table {
        name: name.to_owned(),
        title: String::new(),
        columns,
        rows,
    })
}

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The methodology, generated from the report's own rules.
pub fn methodology(report: &Report) -> String {
    let b = &report.banding;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Transparency report {} to {} (format {})",
        report.period.from, report.period.to, report.format
    );
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "Source. Every number is computed from the provider's signed audit log alone: entries {} to {} of log {}, verified against the signed checkpoint in checkpoint.txt. Anyone holding an export of that range recomputes every number with `writ transparency verify REPORT EXPORT --key KEY`.",
        report.log.start,
        report.log.end.saturating_sub(1),
        report.log.origin
    );
    let _ = writeln!(t);
    let paragraphs = [
        "A request is an order logged as received within the period (days in UTC, both ends included), whatever channel it came by (API, ETSI HI-1, or entered by staff from paper). An amended order is the same request.",
        "An account specified is a target naming an account directly (a user id or user name); an identifier specified is any target (user id, user name, phone number, IP address). The log records how many, never which.",
        "Country and issuing-authority kind are those of the authority's registration with the provider (the order's own claim only where the registry holds none). The legal basis is the citation of the instrument the order was made under.",
        "Outcomes are as at the end of the period. Some data produced: a package with at least one record was released. No data held: a package was released with no record in it. Refused: the provider refused the order. Withdrawn: the authority withdrew it, or its emergency validation lapsed before an answer. Narrowed: the scope was narrowed before release (counted besides the outcome). Open at period end: none of these yet.",
        "Emergency requests are shown apart and included in the totals. Preservation requests (data kept, nothing released) are shown apart and not included in the totals.",
        "Time to respond runs from the true time of receipt to the release or refusal, for requests to produce answered by the end of the period; median and 90th percentile are nearest-rank, in hours. On time means answered at or before the deadline computed when the order was received; requests without a deadline are counted apart.",
        "Non-disclosure orders in force at period end: those open-ended or ending after the period. Users notified: requests of the period whose user was notified by the end of the period.",
    ];
    for p in paragraphs {
        let _ = writeln!(t, "{p}");
        let _ = writeln!(t);
    }
    let _ = writeln!(
        t,
        "Small numbers. A count from 1 to {} is published as \"<{}\" (0 is published as 0). Shares, medians and percentiles over fewer than {} requests are not published. In each table, a country with fewer than {} requests is merged into \"other\".",
        b.threshold.saturating_sub(1),
        b.threshold,
        b.threshold,
        b.country_minimum
    );
    for c in &b.categories {
        let _ = writeln!(t);
        let band = if c.band == 0 {
            "exactly, under the rule above".to_owned()
        } else {
            format!(
                "in bands of {} (0-{}, {}-{}, ...)",
                c.band,
                c.band - 1,
                c.band,
                2 * c.band - 1
            )
        };
        let _ = writeln!(
            t,
            "Category {}: requests under {} are reported only in their own table, {band}, and not before {} days after the period's end.",
            c.name,
            c.instruments.join(", "),
            c.delay_days
        );
    }
    if !report.limitations.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "Limitations.");
        for l in &report.limitations {
            let _ = writeln!(t, "- {l}");
        }
    }
    t
}

const COLORS: [&str; 5] = ["#1f5f8b", "#6a9fb5", "#c0504d", "#9b9b9b", "#e0a030"];

fn cell_of<'a>(t: &'a Table, row_key: &str, col: usize) -> Option<&'a str> {
    t.rows
        .iter()
        .find(|r| r.first().map(String::as_str) == Some(row_key))
        .and_then(|r| r.get(col))
        .map(String::as_str)
}

/// Vertical bars: requests per month.
fn chart_over_time(t: &Table) -> String {
    let bars: Vec<(String, String)> = t
        .rows
        .iter()
        .map(|r| (r[0].clone(), r.get(1).cloned().unwrap_or_default()))
        .collect();
    let max = bars
        .iter()
        .filter_map(|(_, v)| drawable(v).map(|d| d.0))
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, h, left, bottom) = (720u64, 240u64, 40u64, 40u64);
    let slot = ((w - left) / (bars.len() as u64).max(1)).max(8);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Requests by month\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">"
    );
    let plot = h - bottom - 10;
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{w}\" y2=\"{}\" stroke=\"#444\"/>",
        h - bottom,
        h - bottom
    );
    let _ = write!(
        s,
        "<text x=\"2\" y=\"16\" font-size=\"11\" fill=\"#444\">{max}</text>"
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let x = left + i as u64 * slot + 2;
        let (v, exact) = drawable(value).unwrap_or((0, true));
        let bh = v * plot / max;
        let y = h - bottom - bh;
        let bw = slot.saturating_sub(4).max(2);
        if exact {
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{bw}\" height=\"{bh}\" fill=\"{}\"><title>{}: {}</title></rect>",
                COLORS[0],
                esc(label),
                esc(value)
            );
        } else {
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{bw}\" height=\"{bh}\" fill=\"none\" stroke=\"{}\" stroke-dasharray=\"3 2\"><title>{}: {}</title></rect>",
                COLORS[0],
                esc(label),
                esc(value)
            );
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#222\">{}</text>",
            x + bw / 2,
            y.saturating_sub(3).max(10),
            esc(value)
        );
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
            x + bw / 2,
            h - bottom + 14,
            esc(label.get(2..).unwrap_or(label))
        );
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars: requests per country (main and emergency tables together).
fn chart_by_country(report: &Report) -> String {
    let mut per: std::collections::BTreeMap<String, (u64, bool)> = Default::default();
    for name in ["by_country", "emergency"] {
        if let Some(t) = report.table(name) {
            let col = t.columns.iter().position(|c| c == "requests").unwrap_or(1);
            for r in &t.rows {
                if let Some((v, exact)) = r.get(col).and_then(|c| drawable(c)) {
                    let e = per.entry(r[0].clone()).or_insert((0, true));
                    e.0 += v;
                    e.1 &= exact;
                }
            }
        }
    }
    let max = per.values().map(|v| v.0).max().unwrap_or(0).max(1);
    let row_h = 22u64;
    let (w, left) = (720u64, 110u64);
    let h = row_h * (per.len() as u64).max(1) + 10;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Requests by country\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">"
    );
    for (i, (country, (v, exact))) in per.iter().enumerate() {
        let y = 5 + i as u64 * row_h;
        let bw = v * (w - left - 80) / max;
        let label = if *exact {
            v.to_string()
        } else {
            format!("up to {v}")
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#222\">{}</text>",
            left - 6,
            y + 14,
            esc(country)
        );
        if *exact {
            let _ = write!(
                s,
                "<rect x=\"{left}\" y=\"{y}\" width=\"{bw}\" height=\"{}\" fill=\"{}\"/>",
                row_h - 6,
                COLORS[1]
            );
        } else {
            let _ = write!(
                s,
                "<rect x=\"{left}\" y=\"{y}\" width=\"{bw}\" height=\"{}\" fill=\"none\" stroke=\"{}\" stroke-dasharray=\"3 2\"/>",
                row_h - 6,
                COLORS[1]
            );
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#222\">{}</text>",
            left + bw + 6,
            y + 13,
            esc(&label)
        );
    }
    s.push_str("</svg>");
    s
}

/// A 100% bar of outcomes, with a legend; shares only where the counts are exact.
fn chart_outcomes(report: &Report) -> String {
    let Some(t) = report.table("summary") else {
        return String::new();
    };
    let total = cell_of(t, "requests received (preservation apart)", 1).unwrap_or("0");
    let total_exact = total.parse::<u64>().ok();
    let parts = [
        "some data produced",
        "no data held",
        "refused",
        "withdrawn",
        "open at period end",
    ];
    let values: Vec<(&str, String)> = parts
        .iter()
        .map(|p| (*p, cell_of(t, p, 1).unwrap_or("0").to_owned()))
        .collect();
    let sum: u64 = values
        .iter()
        .filter_map(|(_, v)| drawable(v).map(|d| d.0))
        .sum::<u64>()
        .max(1);
    let (w, h) = (720u64, 70u64 + 20 * parts.len() as u64);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Outcome shares\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">"
    );
    let mut x = 0u64;
    for (i, (_, v)) in values.iter().enumerate() {
        let (n, _) = drawable(v).unwrap_or((0, true));
        let bw = n * w / sum;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"5\" width=\"{bw}\" height=\"30\" fill=\"{}\"/>",
            COLORS[i % COLORS.len()]
        );
        x += bw;
    }
    for (i, (name, v)) in values.iter().enumerate() {
        let y = 55 + i as u64 * 20;
        let share = match (total_exact, v.parse::<u64>()) {
            (Some(tot), Ok(n)) if tot > 0 => {
                let tenths = (n * 1000 + tot / 2) / tot;
                format!(" ({}.{}%)", tenths / 10, tenths % 10)
            }
            _ => String::new(),
        };
        let _ = write!(
            s,
            "<rect x=\"0\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"18\" y=\"{}\" font-size=\"12\" fill=\"#222\">{}: {}{}</text>",
            y - 10,
            COLORS[i % COLORS.len()],
            y,
            esc(name),
            esc(v),
            esc(&share)
        );
    }
    s.push_str("</svg>");
    s
}

/// A table as HTML.
pub fn html_table(t: &Table) -> String {
    let mut s = format!(
        "<section><h2 id=\"{}\">{}</h2><table><thead><tr>",
        esc(&t.name),
        esc(&t.title)
    );
    for c in &t.columns {
        let _ = write!(s, "<th scope=\"col\">{}</th>", esc(c));
    }
    s.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        s.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            if i == 0 {
                let _ = write!(s, "<th scope=\"row\">{}</th>", esc(c));
            } else {
                let _ = write!(s, "<td>{}</td>", esc(c));
            }
        }
        s.push_str("</tr>");
    }
    if t.rows.is_empty() {
        let _ = write!(
            s,
            "<tr><td colspan=\"{}\">No requests.</td></tr>",
            t.columns.len()
        );
    }
    let _ = write!(
        s,
        "</tbody></table><p class=\"files\">Download: <a href=\"{n}.csv\">{n}.csv</a> · <a href=\"{n}.json\">{n}.json</a></p></section>",
        n = esc(&t.name)
    );
    s
}

/// The report's body: charts, tables, limitations (shared by the static page and the
/// workspace's page).
pub fn body(report: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<p>Requests received by the provider from {} to {} (UTC), computed from entries {} to {} of the signed audit log <code>{}</code>. Every number can be recomputed from an export of that range: see methodology.txt.</p>",
        report.period.from,
        report.period.to,
        report.log.start,
        report.log.end.saturating_sub(1),
        esc(&report.log.origin)
    );
    if !report.limitations.is_empty() {
        s.push_str("<section class=\"limits\"><h2>What this report cannot say</h2><ul>");
        for l in &report.limitations {
            let _ = write!(s, "<li>{}</li>", esc(l));
        }
        s.push_str("</ul></section>");
    }
    s.push_str("<section class=\"charts\"><h2>Requests over time</h2><figure>");
    if let Some(t) = report.table("over_time") {
        s.push_str(&chart_over_time(t));
    }
    s.push_str("<figcaption>Requests received per month (preservation apart). Dashed bars are published as a band or as less than the threshold: drawn up to its upper bound.</figcaption></figure>");
    s.push_str("<h2>By country</h2><figure>");
    s.push_str(&chart_by_country(report));
    s.push_str("<figcaption>Requests received per issuing country, emergency included, preservation apart.</figcaption></figure>");
    s.push_str("<h2>Outcomes</h2><figure>");
    s.push_str(&chart_outcomes(report));
    s.push_str("<figcaption>Outcome of the period's requests at the end of the period.</figcaption></figure></section>");
    for t in &report.tables {
        s.push_str(&html_table(t));
    }
    s
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.4}h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.6rem;border-bottom:1px solid #ccc}table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:right}th[scope=row],thead th{text-align:left;background:#f3f3f3}figure{margin:.5rem 0}figcaption{font-size:.8rem;color:#555}svg{max-width:100%;height:auto}.files{font-size:.8rem}.meta{font-size:.8rem;color:#444}.limits{background:#fff6e0;padding:.2rem .8rem;border:1px solid #e0c070}pre{white-space:pre-wrap;font-size:.7rem;background:#f6f6f6;padding:.5rem}@media print{a{color:inherit;text-decoration:none}.files{display:none}section{break-inside:avoid}}";

/// The static page: self-contained, no script, no external asset.
pub fn html(report: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Transparency report {} to {}</title><style>{CSS}</style></head><body><header><h1>Transparency report</h1><p class=\"meta\">{} to {} · generated {} · format {}</p></header><main>",
        report.period.from,
        report.period.to,
        report.period.from,
        report.period.to,
        esc(&report.generated_at),
        esc(&report.format)
    );
    s.push_str(&body(report));
    let _ = writeln!(
        s,
        "<section><h2>Verification</h2><p>Signed checkpoint (also in checkpoint.txt), entries {}..{} of the log:</p><pre>{}</pre><p>See <a href=\"methodology.txt\">methodology.txt</a> for what each number counts and how small numbers are published.</p></section></main></body></html>",
        report.log.start,
        report.log.end,
        esc(&report.log.checkpoint)
    );
    s
}
