//! Date cycling: ISO 8601 dates and durations, proleptic Gregorian calendar
//! arithmetic (by jiff), every point from start to stop inclusive.

use jiff::Span as Duration;
use jiff::civil::{Date, DateTime};
use twinflow_core::CyclePoint;

/// The most cycle points a workflow may have.
pub(crate) const MAX_CYCLE_POINTS: usize = 200_000;

/// Parses `2020-01-01`, `2020-01-01T06:00`, `2020-01-01T06:00:00` (a trailing
/// `Z` is accepted: points are UTC wall-clock times). Also says whether it had
/// a time of day.
pub(crate) fn parse_point(text: &str) -> Result<(DateTime, bool), String> {
    let t = text.trim().trim_end_matches('Z');
    if t.contains('T') {
        t.parse::<DateTime>()
            .map(|dt| (dt, true))
            .map_err(|e| format!("`{text}` is not an ISO 8601 date-time: {e}"))
    } else {
        t.parse::<Date>()
            .map(|d| (d.to_datetime(jiff::civil::Time::midnight()), false))
            .map_err(|_| format!("`{text}` is not an ISO 8601 date (YYYY-MM-DD)"))
    }
}

/// ISO 8601 durations only (`P10Y`), not jiff's "friendly" ones (`10 years`).
static ISO_DURATION: jiff::fmt::temporal::SpanParser = jiff::fmt::temporal::SpanParser::new();

/// Parses an ISO 8601 duration (`P10Y`, `P1M`, `P1D`, `PT6H`); it must be
/// positive. Nothing else is a cycle step: `10 years` or `1y` are refused
/// (see [`iso_form`] for the hint).
pub(crate) fn parse_step(text: &str) -> Result<(Duration, bool), String> {
    let step: Duration = ISO_DURATION.parse_span(text.trim()).map_err(|_| {
        format!("`{text}` is not an ISO 8601 duration; write e.g. `P10Y`, `P1M`, `P1D` or `PT6H`")
    })?;
    if !step.is_positive() {
        return Err(format!("the cycle step `{text}` must be longer than zero"));
    }
    let has_time = step.get_hours() != 0
        || step.get_minutes() != 0
        || step.get_seconds() != 0
        || step.get_milliseconds() != 0;
    Ok((step, has_time))
}

/// The ISO 8601 form of a duration written another way (`10 years`, `1y`,
/// `10Y`, `6h`), for a "did you mean" hint.
pub(crate) fn iso_form(text: &str) -> Option<String> {
    let span = jiff::fmt::friendly::SpanParser::new()
        .parse_span(text.trim().to_lowercase())
        .ok()
        .filter(|s| s.is_positive())?;
    Some(span.to_string())
}

/// Every point from `start` to `stop` (inclusive), labelled as dates unless
/// a time of day is involved.
pub(crate) fn points(
    start: DateTime,
    stop: DateTime,
    step: Duration,
    with_time: bool,
) -> Result<Vec<CyclePoint>, String> {
    if stop < start {
        return Err("the cycle stops before it starts".into());
    }
    let mut out = Vec::new();
    for i in 0i64.. {
        if out.len() >= MAX_CYCLE_POINTS {
            return Err(format!(
                "the cycle has more than {MAX_CYCLE_POINTS} points; use a longer step"
            ));
        }
        // From the start each time, so month ends do not drift (Jan 31 + 2 x P1M = Mar 31).
        // Past the calendar's last day (9999-12-31) there is nothing left: the cycle ends.
        let Ok(point) = step.checked_mul(i).and_then(|s| start.checked_add(s)) else {
            break;
        };
        if point > stop {
            break;
        }
        let label = if with_time {
            point.strftime("%Y-%m-%dT%H:%M:%S").to_string()
        } else {
            point.strftime("%Y-%m-%d").to_string()
        };
        out.push(CyclePoint {
            label,
            year: point.year(),
            month: point.month(),
            day: point.day(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(start: &str, stop: &str, step: &str) -> Vec<String> {
        let (a, ta) = parse_point(start).unwrap();
        let (b, tb) = parse_point(stop).unwrap();
        let (s, ts) = parse_step(step).unwrap();
        points(a, b, s, ta || tb || ts)
            .unwrap()
            .into_iter()
            .map(|p| p.label)
            .collect()
    }

    #[test]
    fn decades_are_inclusive() {
        let l = labels("2020-01-01", "2100-01-01", "P10Y");
        assert_eq!(l.len(), 9);
        assert_eq!(l[0], "2020-01-01");
        assert_eq!(l[8], "2100-01-01");
    }

    #[test]
    fn months_do_not_drift_at_month_ends() {
        let l = labels("2021-01-31", "2021-04-30", "P1M");
        assert_eq!(l, ["2021-01-31", "2021-02-28", "2021-03-31", "2021-04-30"]);
    }

    #[test]
    fn leap_days_and_sub_daily_steps() {
        let l = labels("2024-02-28", "2024-03-01", "P1D");
        assert_eq!(l, ["2024-02-28", "2024-02-29", "2024-03-01"]);
        let l = labels("2024-01-01T00:00", "2024-01-01T18:00", "PT6H");
        assert_eq!(l.len(), 4);
        assert_eq!(l[3], "2024-01-01T18:00:00");
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(parse_point("2020-13-01").is_err());
        assert!(parse_point("yesterday").is_err());
        assert!(parse_step("10Y").is_err());
        assert!(parse_step("10 years").is_err());
        assert!(parse_step("1y").is_err());
        assert_eq!(iso_form("10 years").as_deref(), Some("P10Y"));
        assert_eq!(iso_form("1y").as_deref(), Some("P1Y"));
        assert_eq!(iso_form("10Y").as_deref(), Some("P10Y"));
        assert_eq!(iso_form("6h").as_deref(), Some("PT6H"));
        assert_eq!(iso_form("1 month 2 days").as_deref(), Some("P1M2D"));
        assert_eq!(iso_form("P1Y"), None);
        assert_eq!(iso_form("soon"), None);
        assert!(parse_step("P0D").is_err());
        assert!(parse_step("-P1D").is_err());
        let (a, _) = parse_point("2020-01-01").unwrap();
        let (b, _) = parse_point("2019-01-01").unwrap();
        let (s, _) = parse_step("P1Y").unwrap();
        assert!(points(a, b, s, false).is_err());
        let (b, _) = parse_point("9999-01-01").unwrap();
        let (s, _) = parse_step("PT1S").unwrap();
        assert!(points(a, b, s, true).unwrap_err().contains("more than"));
    }
}
