//! Reading the registry's exposition back: the OpenMetrics text that prometheus-client writes,
//! as [`Metric`] values (for `get_metric`/`get_metrics`) or as Prometheus text format 0.0.4 (what
//! `/metrics` serves with `text/plain; version=0.0.4`).

/// What kind of metric a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up; its sample is `<name>_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets: `<name>_bucket{le=…}`, `<name>_sum`, `<name>_count`.
    Histogram,
    /// Constant labels (`<name>_info`).
    Info,
    /// Anything else.
    Unknown,
}

/// One sample of a metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`p2p_connection_attempts_total`, `…_bucket`, …).
    pub name: String,
    /// Its labels, in order.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// One metric family as of the last encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The family name (`p2p_connection_attempts`).
    pub name: String,
    /// Its help text.
    pub help: String,
    /// Its kind.
    pub kind: MetricKind,
    /// Its samples.
    pub samples: Vec<Sample>,
}

impl Metric {
    /// A single number for the family: a counter's total, a gauge's value (summed over label
    /// sets), a histogram's count of observations.
    pub fn value(&self) -> f64 {
        let wanted = match self.kind {
            MetricKind::Counter => format!("{}_total", self.name),
            MetricKind::Histogram => format!("{}_count", self.name),
            MetricKind::Info => format!("{}_info", self.name),
            _ => self.name.clone(),
        };
        self.samples.iter().filter(|s| s.name == wanted).map(|s| s.value).sum()
    }

    /// The sample whose labels include all of `labels`.
    pub fn sample_with(&self, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.samples.iter().find(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
    }
}

fn kind_of(s: &str) -> MetricKind {
    match s {
        "counter" => MetricKind::Counter,
        "gauge" => MetricKind::Gauge,
        "histogram" => MetricKind::Histogram,
        "info" => MetricKind::Info,
        _ => MetricKind::Unknown,
    }
}

/// `name{k="v",…} value` → (name, labels, value); `None` for a line that is not a sample.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i + 1);
                    break;
                }
                ',' => {}
                '=' => {
                    // A quoted value with \\, \" and \n escapes.
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
        rest = &body[end?..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}

/// Every family in an OpenMetrics text exposition, in order.
pub fn parse(text: &str) -> Vec<Metric> {
    let mut out: Vec<Metric> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push(Metric { name: name.into(), help: help.into(), kind: MetricKind::Unknown, samples: Vec::new() });
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            match out.last_mut() {
                Some(m) if m.name == name => m.kind = kind_of(kind),
                _ => out.push(Metric {
                    name: name.into(),
                    help: String::new(),
                    kind: kind_of(kind),
                    samples: Vec::new(),
                }),
            }
        } else if !line.starts_with('#') {
            if let (Some(sample), Some(m)) = (parse_sample(line), out.last_mut()) {
                m.samples.push(sample);
            }
        }
    }
    out
}

/// Prometheus text format 0.0.4 from OpenMetrics text: the same samples, without the lines the
/// older format lacks (`# UNIT`, `# EOF`), info families as gauges named `<name>_info`, and
/// `unknown` as `untyped`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A HELP line waits for its TYPE line, which may rename the family (info → `<name>_info`).
    let mut help: Option<&str> = None;
    let flush = |out: &mut String, help: &mut Option<&str>| {
        if let Some(h) = help.take() {
            out.push_str(h);
            out.push('\n');
        }
    };
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            flush(&mut out, &mut help);
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            match kind {
                "info" => {
                    if let Some(h) = help.take() {
                        let text = h.strip_prefix("# HELP ").and_then(|r| r.split_once(' ')).map_or("", |(_, t)| t);
                        out.push_str(&format!("# HELP {name}_info {text}\n"));
                    }
                    out.push_str(&format!("# TYPE {name}_info gauge\n"));
                }
                "unknown" => {
                    flush(&mut out, &mut help);
                    out.push_str(&format!("# TYPE {name} untyped\n"));
                }
                _ => {
                    flush(&mut out, &mut help);
                    out.push_str(line);
                    out.push('\n');
                }
            }
            continue;
        }
        flush(&mut out, &mut help);
        out.push_str(line);
        out.push('\n');
    }
    flush(&mut out, &mut help);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP p2p_connection_attempts Connection attempts.\n\
# TYPE p2p_connection_attempts counter\n\
p2p_connection_attempts_total 3\n\
# HELP p2p_relay_score Score of each relay.\n\
# TYPE p2p_relay_score gauge\n\
p2p_relay_score{relay=\"12D3KooW\\\"x\"} 87.5\n\
p2p_relay_score{relay=\"b\"} 12.0\n\
# HELP p2p_connection_latency_ms Latency.\n\
# TYPE p2p_connection_latency_ms histogram\n\
p2p_connection_latency_ms_sum 60.0\n\
p2p_connection_latency_ms_count 2\n\
p2p_connection_latency_ms_bucket{le=\"+Inf\"} 2\n\
# HELP build Build.\n\
# TYPE build info\n\
build_info{version=\"1\"} 1\n\
# EOF\n";

    #[test]
    fn reads_families_and_samples() {
        let m = parse(TEXT);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].kind, MetricKind::Counter);
        assert_eq!(m[0].value(), 3.0);
        assert_eq!(m[1].samples[0].label("relay"), Some("12D3KooW\"x"));
        assert_eq!(m[1].sample_with(&[("relay", "b")]).map(|s| s.value), Some(12.0));
        assert_eq!(m[2].value(), 2.0);
        assert_eq!(m[2].samples[2].value, 2.0);
        assert_eq!(m[3].value(), 1.0);
    }

    #[test]
    fn prometheus_text_drops_what_0_0_4_lacks() {
        let t = to_prometheus_text(TEXT);
        assert!(!t.contains("# EOF"));
        assert!(t.contains("# HELP build_info Build.\n# TYPE build_info gauge\nbuild_info{version=\"1\"} 1\n"), "{t}");
        assert!(!t.contains("# HELP build "));
        assert!(t.contains("p2p_connection_attempts_total 3"));
    }
}
