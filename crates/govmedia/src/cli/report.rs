//! Readiness reports for a period (R8.1.1): the daily assessments of every account as
//! CSV (one row per account and date), JSON (the same rows), or an SVG chart with one
//! panel per account showing its score and its days since the last publication over
//! time, against the warning (10) and veto (15) lines.

use std::fmt::Write as _;

use govmedia_proto::audit::v1 as apb;

use super::BoxError;
use super::output::label;

/// The columns of a report row, in order.
pub const COLUMNS: [&str; 16] = [
    "date",
    "platform_account_id",
    "handle",
    "department_id",
    "level",
    "score",
    "days_since_last_publication",
    "interaction_status",
    "interactions_received",
    "interactions_answered",
    "missed_reply_deadlines",
    "overdue_referrals",
    "security_incidents",
    "serious_wording_errors",
    "overdue_rectifications",
    "veto_items",
];

/// One account's assessments over the period, oldest first.
pub struct Series {
    /// The account.
    pub account: String,
    /// Its handle.
    pub handle: String,
    /// The assessments.
    pub days: Vec<apb::AccountCompliance>,
}

fn row(c: &apb::AccountCompliance) -> Vec<String> {
    let vetoes: Vec<String> = c
        .items
        .iter()
        .filter(|i| i.level() == apb::ComplianceLevel::Veto)
        .map(|i| label(Some(i.indicator().as_str_name()), "COMPLIANCE_INDICATOR_"))
        .collect();
    vec![
        c.assessment_date.clone(),
        c.platform_account_id.clone(),
        c.handle.clone(),
        c.department_id.clone(),
        label(Some(c.level().as_str_name()), "COMPLIANCE_LEVEL_"),
        c.score.to_string(),
        c.days_since_last_publication.to_string(),
        label(Some(c.interaction_status().as_str_name()), "INTERACTION_STATUS_"),
        c.interactions_received.to_string(),
        c.interactions_answered.to_string(),
        c.missed_reply_deadlines.to_string(),
        c.overdue_referrals.to_string(),
        c.security_incidents.to_string(),
        c.serious_wording_errors.to_string(),
        c.overdue_rectifications.to_string(),
        vetoes.join(";"),
    ]
}

/// The rows as CSV (RFC 4180), with a header.
pub fn csv(series: &[Series]) -> Result<String, BoxError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(COLUMNS)?;
    for s in series {
        for day in &s.days {
            out.write_record(row(day))?;
        }
    }
    Ok(String::from_utf8(out.into_inner().map_err(|e| e.to_string())?)?)
}

/// The rows as a JSON array of objects keyed by [`COLUMNS`].
pub fn json(series: &[Series]) -> Result<String, BoxError> {
    let rows: Vec<serde_json::Value> = series
        .iter()
        .flat_map(|s| s.days.iter())
        .map(|day| {
            serde_json::Value::Object(
                COLUMNS.iter().zip(row(day)).map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v))).collect(),
            )
        })
        .collect();
    Ok(serde_json::to_string_pretty(&rows)?)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const PANEL_WIDTH: f64 = 640.0;
const PANEL_HEIGHT: f64 = 160.0;
const LEFT: f64 = 48.0;
const TOP: f64 = 28.0;
const PLOT_HEIGHT: f64 = 110.0;

/// An SVG chart: a panel per account, the score (0–100, solid) and the days since the
/// last publication (dashed, on the same scale up to 30 days) by date, with the warning
/// and veto lines of the update-frequency indicator.
pub fn svg(series: &[Series], from: &str, to: &str) -> Result<String, BoxError> {
    let height = TOP + PANEL_HEIGHT * series.len().max(1) as f64;
    let width = LEFT + PANEL_WIDTH + 24.0;
    let mut out = String::new();
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    )?;
    writeln!(
        out,
        r#"<text x="{LEFT}" y="16" font-size="13">Inspection readiness {} to {}: score (solid, 0–100) and days since the last publication (dashed, 0–30)</text>"#,
        escape(from),
        escape(to)
    )?;
    for (n, s) in series.iter().enumerate() {
        let top = TOP + PANEL_HEIGHT * n as f64;
        let plot_top = top + 16.0;
        let bottom = plot_top + PLOT_HEIGHT;
        let count = s.days.len().max(2) - 1;
        let x = |i: usize| LEFT + PANEL_WIDTH * i as f64 / count as f64;
        let y_score = |score: f64| bottom - PLOT_HEIGHT * score.clamp(0.0, 100.0) / 100.0;
        let y_days = |days: f64| bottom - PLOT_HEIGHT * days.clamp(0.0, 30.0) / 30.0;
        writeln!(
            out,
            r#"<g><text x="{LEFT}" y="{}">{} ({})</text>"#,
            top + 10.0,
            escape(&s.handle),
            escape(&s.account)
        )?;
        writeln!(
            out,
            r##"<rect x="{LEFT}" y="{plot_top}" width="{PANEL_WIDTH}" height="{PLOT_HEIGHT}" fill="none" stroke="#999"/>"##
        )?;
        for (days, colour, name) in [(10.0, "#d90", "warning"), (15.0, "#c00", "veto")] {
            let y = y_days(days);
            writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{colour}" stroke-dasharray="2,3"/><text x="{}" y="{:.1}" fill="{colour}">{name}</text>"##,
                LEFT + PANEL_WIDTH,
                LEFT + PANEL_WIDTH + 2.0,
                y + 3.0
            )?;
        }
        let points = |f: &dyn Fn(&apb::AccountCompliance) -> f64| {
            s.days.iter().enumerate().map(|(i, d)| format!("{:.1},{:.1}", x(i), f(d))).collect::<Vec<_>>().join(" ")
        };
        let score = points(&|d| y_score(f64::from(d.score)));
        let days = points(&|d| y_days(d.days_since_last_publication as f64));
        writeln!(out, r##"<polyline points="{score}" fill="none" stroke="#06c" stroke-width="2"/>"##)?;
        writeln!(
            out,
            r##"<polyline points="{days}" fill="none" stroke="#555" stroke-width="1.5" stroke-dasharray="5,3"/>"##
        )?;
        for (i, d) in s.days.iter().enumerate() {
            if d.level() == apb::ComplianceLevel::Veto {
                writeln!(
                    out,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#c00"><title>{} veto</title></circle>"##,
                    x(i),
                    y_score(f64::from(d.score)),
                    escape(&d.assessment_date)
                )?;
            }
        }
        if let (Some(first), Some(last)) = (s.days.first(), s.days.last()) {
            writeln!(
                out,
                r#"<text x="{LEFT}" y="{:.1}">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                bottom + 13.0,
                escape(&first.assessment_date),
                LEFT + PANEL_WIDTH,
                bottom + 13.0,
                escape(&last.assessment_date)
            )?;
        }
        writeln!(out, "</g>")?;
    }
    writeln!(out, "</svg>")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, score: u32, days: i32, level: apb::ComplianceLevel) -> apb::AccountCompliance {
        apb::AccountCompliance {
            platform_account_id: "a-1".into(),
            handle: "市局<发布>, \"官方\"".into(),
            assessment_date: date.into(),
            score,
            days_since_last_publication: days,
            level: level as i32,
            ..Default::default()
        }
    }

    fn series() -> Vec<Series> {
        vec![Series {
            account: "a-1".into(),
            handle: "市局<发布>".into(),
            days: vec![
                day("2026-11-01", 100, 9, apb::ComplianceLevel::Compliant),
                day("2026-11-02", 100, 10, apb::ComplianceLevel::Warning),
                day("2026-11-07", 100, 15, apb::ComplianceLevel::Veto),
            ],
        }]
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_has_a_row_per_day() {
        let text = csv(&series()).expect("csv");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(COLUMNS.join(",").as_str()));
        let first = lines.next().expect("row");
        assert!(first.starts_with("2026-11-01,a-1,\"市局<发布>, \"\"官方\"\"\","), "{first}");
        assert_eq!(text.lines().count(), 4);
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&json(&series()).expect("json")).expect("parses");
        assert_eq!(parsed[2]["level"], "veto");
        assert_eq!(parsed[2]["days_since_last_publication"], "15");
    }

    #[test]
    fn the_chart_escapes_names_and_marks_vetoes() {
        let chart = svg(&series(), "2026-11-01", "2026-11-07").expect("svg");
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert!(chart.contains("市局&lt;发布&gt;") && !chart.contains("市局<发布>"));
        assert_eq!(chart.matches("<circle").count(), 1, "one veto day");
        assert_eq!(chart.matches("<polyline").count(), 2);
    }
}
