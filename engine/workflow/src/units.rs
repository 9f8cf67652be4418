//! Memory sizes (`512MiB`, `8GiB`, `2GB`, Slurm-style `8G`) and durations
//! (`90s`, `30m`, `2h`, `1d`, `1h30m`, `HH:MM:SS`, `D-HH:MM:SS`).

/// Parses a memory size into bytes. `K`/`M`/`G`/`T` alone are binary units,
/// as in Slurm's `--mem`.
pub(crate) fn parse_memory(text: &str) -> Result<u64, String> {
    parse_size(text, "memory size")
}

/// Parses a size into bytes, as [`parse_memory`]; `what` names it in
/// messages (`a memory size`, `a size`).
pub(crate) fn parse_size(text: &str, what: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "a {what} starts with a number, like `512MiB` or `8GiB`"
        ));
    }
    let multiplier: u64 = match unit.trim() {
        "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "" => {
            let n: f64 = number.parse().unwrap_or(0.0);
            return Err(if n >= 64.0 {
                format!("a {what} needs a unit: write `{number}MiB`")
            } else {
                format!("a {what} needs a unit: write `{number}GiB` or `{number}MiB`")
            });
        }
        other => {
            return Err(format!(
                "unknown {} unit `{other}`; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB",
                what.strip_suffix(" size").unwrap_or(what)
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let bytes = value * multiplier as f64;
    if !(1.0..=(1u64 << 60) as f64).contains(&bytes) {
        return Err(format!("a {what} must be between 1 byte and 1 EiB"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration into seconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("a duration is empty; write e.g. `90s`, `30m`, `2h` or `01:30:00`".into());
    }
    if t.contains(':') {
        return parse_clock(t);
    }
    if t.contains(char::is_whitespace) {
        return Err(match compact_duration(t) {
            Some(c) => format!("`{t}` is not a duration; write `{c}`"),
            None => format!(
                "`{t}` is not a duration; write e.g. `90s`, `30m`, `2h` or `1h30m` (no spaces)"
            ),
        });
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{t}` has no unit; write `{t}s`, `{t}m` or `{t}h`"));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "unknown duration unit `{c}`; use s, m, h, d or w (e.g. `1h30m`), or HH:MM:SS"
                ));
            }
        };
        if number.is_empty() {
            return Err(format!("`{c}` must follow a number, as in `30{c}`"));
        }
        let n: u64 = number.parse().map_err(|_| "duration too long".to_owned())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or("duration too long")?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("`{number}` at the end has no unit"));
    }
    check_positive(total)
}

/// `2 hours 30 minutes` -> `2h30m`, when every word is a known unit.
fn compact_duration(t: &str) -> Option<String> {
    let mut out = String::new();
    let mut words = t.split_whitespace();
    while let Some(number) = words.next() {
        number.parse::<u64>().ok()?;
        let word = words.next()?.to_lowercase();
        let unit = match word.trim_end_matches('s') {
            "" | "sec" | "second" => "s",
            "min" | "minute" => "m",
            "h" | "hr" | "hour" => "h",
            "d" | "day" => "d",
            "w" | "week" => "w",
            _ => return None,
        };
        out.push_str(number);
        out.push_str(unit);
    }
    Some(out)
}

/// `HH:MM:SS`, `MM:SS`, `D-HH:MM:SS` (Slurm's forms).
fn parse_clock(t: &str) -> Result<u64, String> {
    let bad = || format!("`{t}` is not a clock duration; write HH:MM:SS or D-HH:MM:SS");
    let (days, clock) = match t.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().map_err(|_| bad())?, rest),
        None => (0, t),
    };
    let parts: Vec<u64> = clock
        .split(':')
        .map(|p| {
            if p.is_empty() || p.len() > 2 && p.len() > 5 {
                Err(bad())
            } else {
                p.parse::<u64>().map_err(|_| bad())
            }
        })
        .collect::<Result<_, _>>()?;
    let (h, m, s) = match parts.as_slice() {
        [m, s] => (0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(bad()),
    };
    if m >= 60 || s >= 60 {
        return Err(format!("`{t}`: minutes and seconds must be below 60"));
    }
    let total = days
        .checked_mul(86_400)
        .and_then(|d| h.checked_mul(3_600).and_then(|h| d.checked_add(h)))
        .and_then(|v| v.checked_add(m * 60 + s))
        .ok_or("duration too long")?;
    check_positive(total)
}

fn check_positive(total: u64) -> Result<u64, String> {
    if total == 0 {
        Err("a duration must be longer than zero".into())
    } else {
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory("8GiB"), Ok(8 << 30));
        assert_eq!(parse_memory("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_memory("8G"), Ok(8 << 30));
        assert_eq!(parse_memory("1.5GiB"), Ok(3 << 29));
        assert!(parse_memory("8").unwrap_err().contains("8GiB"));
        assert!(parse_memory("8 gigs").is_err());
        assert!(parse_memory("GiB").is_err());
        assert!(parse_memory("0MiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("2h"), Ok(7_200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_duration("01:30:00"), Ok(5_400));
        assert_eq!(parse_duration("05:00"), Ok(300));
        assert_eq!(parse_duration("2-00:00:00"), Ok(172_800));
        assert!(parse_duration("90").unwrap_err().contains("90s"));
        assert_eq!(
            parse_duration("2 hours").unwrap_err(),
            "`2 hours` is not a duration; write `2h`"
        );
        assert!(
            parse_duration("1 hour 30 minutes")
                .unwrap_err()
                .contains("`1h30m`")
        );
        assert!(
            parse_duration("2 fortnights")
                .unwrap_err()
                .contains("no spaces")
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("01:75:00").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
