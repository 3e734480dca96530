//! The dashboard: the legal team's figures as server-rendered SVG charts (no JavaScript, no
//! inline styles: presentation attributes only, so the strict CSP holds).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use chrono::Utc;

use super::session::Frame;
use super::{Signed, UiError, html};
use crate::db::Db;
use crate::orders::dashboard::{Dashboard, compute};
use crate::staff::Permission;

/// One bar of a chart, laid out in SVG user units.
pub struct Bar {
    /// What it counts.
    pub label: String,
    /// The count.
    pub value: u64,
    /// Position and size.
    pub x: u64,
    /// Top.
    pub y: u64,
    /// Width.
    pub w: u64,
    /// Height.
    pub h: u64,
}

/// A horizontal bar chart.
pub struct Chart {
    /// Heading (also the SVG's accessible name).
    pub title: &'static str,
    /// Bars, top to bottom.
    pub bars: Vec<Bar>,
    /// SVG height.
    pub height: u64,
}

const LABEL_W: u64 = 170;
const BAR_MAX: u64 = 250;
const ROW: u64 = 22;
/// Bars shown per chart (the rest summed as "others").
const TOP: usize = 10;

fn horizontal(title: &'static str, counts: &[(String, u64)]) -> Chart {
    let mut rows: Vec<(String, u64)> = counts.iter().take(TOP).cloned().collect();
    let rest: u64 = counts.iter().skip(TOP).map(|(_, n)| n).sum();
    if rest > 0 {
        rows.push(("others".into(), rest));
    }
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let bars = rows
        .into_iter()
        .enumerate()
        .map(|(i, (label, value))| Bar {
            w: (value * BAR_MAX).div_ceil(max).max(u64::from(value > 0)),
            label,
            value,
            x: LABEL_W,
            y: u64::try_from(i).unwrap_or(0) * ROW + 4,
            h: ROW - 6,
        })
        .collect::<Vec<_>>();
    let height = u64::try_from(bars.len()).unwrap_or(0) * ROW + 8;
    Chart {
        title,
        bars,
        height,
    }
}

const WEEK_W: u64 = 38;
const WEEK_H: u64 = 120;

fn weekly(counts: &[(String, u64)]) -> Vec<Bar> {
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    counts
        .iter()
        .enumerate()
        .map(|(i, (label, value))| {
            let h = (value * WEEK_H).div_ceil(max);
            Bar {
                label: label.get(5..).unwrap_or(label).to_owned(),
                value: *value,
                x: u64::try_from(i).unwrap_or(0) * (WEEK_W + 4) + 4,
                y: 20 + WEEK_H - h,
                w: WEEK_W,
                h,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "ui/dashboard.html")]
struct DashboardPage {
    frame: Frame,
    d: Dashboard,
    weeks: Vec<Bar>,
    charts: Vec<Chart>,
    /// Emergency share, in whole per cent, and its bar's width out of 400.
    emergency_pct: u64,
    emergency_w: u64,
}

impl DashboardPage {
    /// An instant in the viewer's time zone (UTC on hover).
    fn when(&self, at: &chrono::DateTime<chrono::Utc>) -> super::when::When {
        super::when::When::new(*at, &self.frame.staff.time_zone)
    }

    fn hours(&self, h: &f64) -> String {
        if *h >= 48.0 {
            format!("{:.1} d", h / 24.0)
        } else {
            format!("{h:.1} h")
        }
    }
}

/// `GET /dashboard`: open, overdue and due-today counts, time to respond per instrument,
/// volumes, emergency share and outcomes, counted from the database and the audit log.
#[get("/dashboard")]
pub async fn dashboard(signed: Signed, db: web::Data<Db>) -> Result<HttpResponse, UiError> {
    let staff = signed.require(Permission::ViewOrders)?.clone();
    let d = db.run(move |conn| compute(conn, Utc::now())).await?;
    let o = d.outcomes;
    let outcomes = vec![
        ("released".to_owned(), o.released),
        ("released, narrowed".to_owned(), o.narrowed),
        ("refused".to_owned(), o.refused),
        ("not held".to_owned(), o.not_held),
    ];
    let charts = vec![
        horizontal("Outcomes", &outcomes),
        horizontal("By country of the authority", &d.by_country),
        horizontal("By authority", &d.by_authority),
        horizontal("By instrument", &d.by_instrument),
    ];
    let emergency_pct = (d.emergency * 100).checked_div(d.total).unwrap_or(0);
    let emergency_w = (d.emergency * 400).checked_div(d.total).unwrap_or(0);
    Ok(html(
        StatusCode::OK,
        &DashboardPage {
            frame: Frame { staff },
            weeks: weekly(&d.by_week),
            charts,
            emergency_pct,
            emergency_w,
            d,
        },
    ))
}
