//! The run's report: a table with every figure beside the reference's, as text and Markdown,
//! and the propagation CDF per stack as an SVG plot.

use crate::analysis::Figures;
use plotters::prelude::*;
use std::{fmt::Write, path::Path};

fn ms(v: Option<u64>) -> String {
    v.map_or("never".into(), |v| format!("{v} ms"))
}

/// The report's rows: a figure's name and its value per stack.
fn rows(stacks: &[Figures]) -> Vec<(String, Vec<String>)> {
    let row = |name: &str, f: &dyn Fn(&Figures) -> String| (name.to_string(), stacks.iter().map(f).collect());
    vec![
        row("nodes (live when orders went out)", &|f| format!("{} ({})", f.nodes, f.live_nodes)),
        row("deliveries", &|f| {
            format!("{}/{} ({:.2}%)", f.delivered, f.expected, 100.0 * f.delivered as f64 / f.expected.max(1) as f64)
        }),
        row("orders that reached every live node", &|f| format!("{}/{}", f.complete_orders, f.orders)),
        row("time to 50% of nodes (median order)", &|f| ms(f.t50_p50)),
        row("time to 99% of nodes (median order)", &|f| ms(f.t99_p50)),
        row("time to 100% of nodes (median / slowest order)", &|f| format!("{} / {}", ms(f.t100_p50), ms(f.t100_max))),
        row("delivery / latency lower bound, p50 / p99", &|f| format!("{:.2} / {:.2}", f.ratio_p50, f.ratio_p99)),
        row("duplicates per delivered message", &|f| format!("{:.2}", f.duplicates_per_delivery)),
        row("bytes sent per order per node", &|f| format!("{:.0}", f.bytes_per_order_node)),
        row("  of which (largest protocols)", &|f| {
            let mut v: Vec<_> = f.bytes_by_protocol.iter().filter(|(_, b)| **b >= 1.0).collect();
            v.sort_by(|a, b| b.1.total_cmp(a.1));
            let top: Vec<String> = v.iter().take(3).map(|(p, b)| format!("{p} {b:.0}")).collect();
            if top.is_empty() {
                "-".into()
            } else {
                top.join(", ")
            }
        }),
        row("every node at its peer target", &|f| ms(f.time_to_target)),
        row("every node's gossip mesh >= 4", &|f| ms(f.time_to_mesh)),
        row("peers per node: min / median / max", &|f| {
            format!("{} / {} / {}", f.degree_min, f.degree_p50, f.degree_max)
        }),
        row("diameter (hops)", &|f| f.diameter.map_or("disconnected".into(), |d| d.to_string())),
    ]
}

/// The report as a Markdown table.
pub fn markdown(title: &str, stacks: &[Figures]) -> String {
    let names: Vec<&str> = stacks.iter().map(|f| f.stack.as_str()).collect();
    table_markdown(title, &names, &rows(stacks))
}

/// The report as plain text for the terminal.
pub fn text(stacks: &[Figures]) -> String {
    let names: Vec<&str> = stacks.iter().map(|f| f.stack.as_str()).collect();
    table_text(&names, &rows(stacks))
}

/// A table of figures (one column per stack) as Markdown.
pub fn table_markdown(title: &str, stacks: &[&str], rows: &[(String, Vec<String>)]) -> String {
    let mut s = format!("## {title}\n\n| figure |");
    for name in stacks {
        let _ = write!(s, " {name} |");
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(stacks.len()));
    s.push('\n');
    for (name, values) in rows {
        let _ = writeln!(s, "| {name} | {} |", values.join(" | "));
    }
    s
}

/// A table of figures (one column per stack) as plain text.
pub fn table_text(stacks: &[&str], rows: &[(String, Vec<String>)]) -> String {
    let mut s = format!("{:<48}", "figure");
    for name in stacks {
        let _ = write!(s, "{name:>28}");
    }
    s.push('\n');
    for (name, values) in rows {
        let _ = write!(s, "{name:<48}");
        for v in values {
            let _ = write!(s, "{v:>28}");
        }
        s.push('\n');
    }
    s
}

/// Plots the share of deliveries made by each time, one line per stack.
pub fn cdf_svg(path: &Path, title: &str, stacks: &[Figures]) -> Result<(), Box<dyn std::error::Error>> {
    let max = stacks.iter().filter_map(|f| f.latencies.last()).max().copied().unwrap_or(1).max(1);
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0u64..max, 0f64..1.0)?;
    chart.configure_mesh().x_desc("ms after publication").y_desc("share of deliveries").draw()?;
    let colours = [BLUE, RED, GREEN, BLACK];
    for (k, f) in stacks.iter().enumerate() {
        let n = f.expected.max(1) as f64;
        let colour = colours[k % colours.len()];
        let points = f.latencies.iter().enumerate().map(|(i, t)| (*t, (i + 1) as f64 / n));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(f.stack.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
    root.present()?;
    Ok(())
}

/// BENCHMARKS.md rows (`BENCH | figure | value | goal | ratio | notes |`) for a run with
/// DarkSwap and the reference; `scripts/bench.sh lab` collects them.
pub fn bench_rows(nodes: u32, seed: u64, stacks: &[Figures]) -> Vec<String> {
    let (Some(d), Some(p)) =
        (stacks.iter().find(|f| f.stack == "darkswap"), stacks.iter().find(|f| f.stack != "darkswap"))
    else {
        return Vec::new();
    };
    let share = |f: &Figures| 100.0 * f.delivered as f64 / f.expected.max(1) as f64;
    let notes = format!("Shadow, 8 regions, {} orders, bootstrap nodes stopped first; seed {seed}", d.orders);
    let secs = |v: Option<u64>| v.map_or("never".to_string(), |v| format!("{} s", v / 1000));
    vec![
        format!(
            "BENCH | Lab, {nodes} nodes: deliveries | {:.2}% (rust-libp2p {:.2}%) | 100% | {:.2}x | {notes} |",
            share(d),
            share(p),
            share(d) / 100.0
        ),
        format!(
            "BENCH | Lab, {nodes} nodes: duplicates per delivered message | {:.2} (rust-libp2p {:.2}) | <= 1.5 | {:.2}x rust-libp2p | {notes} |",
            d.duplicates_per_delivery,
            p.duplicates_per_delivery,
            d.duplicates_per_delivery / p.duplicates_per_delivery.max(f64::EPSILON)
        ),
        format!(
            "BENCH | Lab, {nodes} nodes: bytes per order per node | {:.0} (rust-libp2p {:.0}) | < rust-libp2p | {:.2}x rust-libp2p | {notes} |",
            d.bytes_per_order_node,
            p.bytes_per_order_node,
            d.bytes_per_order_node / p.bytes_per_order_node.max(f64::EPSILON)
        ),
        format!(
            "BENCH | Lab, {nodes} nodes: delivery / latency lower bound (p99) | {:.2} (rust-libp2p {:.2}; p50 {:.2} / {:.2}) | <= 1.2 | {:.2}x rust-libp2p | {notes} |",
            d.ratio_p99,
            p.ratio_p99,
            d.ratio_p50,
            p.ratio_p50,
            d.ratio_p99 / p.ratio_p99.max(f64::EPSILON)
        ),
        format!(
            "BENCH | Lab, {nodes} nodes: every node at its peer target | {} (max {} peers; rust-libp2p {}, max {}) | <= 30 s | - | {notes} |",
            secs(d.time_to_target),
            d.degree_max,
            secs(p.time_to_target),
            p.degree_max
        ),
    ]
}
