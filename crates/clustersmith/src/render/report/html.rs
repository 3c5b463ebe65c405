//! The report as one self-contained HTML file: inline CSS and SVG, no script but the embedded
//! document, nothing loaded from anywhere (a Content-Security-Policy of `default-src 'none'`
//! makes the browser refuse any request, should one slip in). Hovering a slot run or a matrix
//! cell shows its details through the SVG's and the cells' own titles, so everything stays
//! readable without JS.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::doc::{FindingDoc, NodeDoc, ReportDoc};

/// Cells of the slot map: 128 × 128 slots, each `CELL` pixels square.
const GRID: u16 = 128;
const CELL: u32 = 4;

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A colour per primary, evenly spread around the hue circle (golden angle), stable for a
/// given order of primaries.
fn colour(index: usize) -> String {
    let hue = (index as f64 * 137.508) % 360.0;
    format!("hsl({hue:.0},62%,55%)")
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:16px 24px}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c8cdd8}
main{padding:8px 24px 32px;max-width:1400px}
section{background:#fff;border-radius:8px;padding:12px 16px;margin:16px 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:16px;margin:4px 0 10px}
table{border-collapse:collapse}
th,td{padding:3px 8px;text-align:left;border-bottom:1px solid #e6e8ec;vertical-align:top}
th{font-weight:600;color:#4a5366}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600}
.pass{background:#d9f5e1;color:#12602c}.fail{background:#fde0de;color:#8b1a10}
.warning{background:#fff1cc;color:#7a5300}.unknown{background:#e9ebf0;color:#4a5366}
.error{background:#fde0de;color:#8b1a10}.info{background:#e3eefc;color:#1d4e89}
.down{color:#8b1a10;font-weight:600}.up{color:#12602c}
.num{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:middle}
.slotmap{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
svg.grid{border:1px solid #d5d9e0;background:#fff}
svg.grid .uncovered{fill:#1d2330}
svg.grid .open{fill:none;stroke:#d00;stroke-width:2}
tr.uncovered td{color:#8b1a10;font-weight:600}
table.matrix td{width:10px;height:10px;padding:0;border:1px solid #fff}
table.matrix th{font-weight:400;font-size:11px;padding:0 6px 0 0;border:0}
table.matrix td.o{background:#9bd8a9}table.matrix td.s{background:#c8cdd8}
table.matrix td.p{background:#f5c04a}table.matrix td.f{background:#d9412e}
table.matrix td.h{background:#7aa7e0}table.matrix td.d{background:#a65d9e}
table.matrix td.u{background:#fff;outline:1px dashed #b0b6c2}table.matrix td.x{background:#eceef2}
details{margin:6px 0;border-left:4px solid #e6e8ec;padding:4px 10px}
details.error{border-color:#d9412e;background:none;color:inherit}
details.warning{border-color:#f5c04a;background:none;color:inherit}
details.info{border-color:#7aa7e0;background:none;color:inherit}
summary{cursor:pointer}
code{font:12px ui-monospace,monospace;background:#f0f2f5;padding:1px 4px;border-radius:3px}
ul{margin:4px 0;padding-left:20px}
.muted{color:#6b7386}
"#;

/// The HTML for `doc`; `json` is the document as `report --format json` prints it, embedded
/// as is.
pub fn render(doc: &ReportDoc, json: &str) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let primaries: Vec<&NodeDoc> = doc
        .nodes
        .iter()
        .filter(|n| n.role.as_deref() == Some("primary") && n.slots > 0)
        .collect();
    let colours: BTreeMap<&str, String> = primaries
        .iter()
        .enumerate()
        .map(|(i, n)| (n.node.as_str(), colour(i)))
        .collect();
    let up = doc.nodes.iter().filter(|n| n.unreachable.is_none()).count();
    let mut versions: Vec<&str> = doc
        .nodes
        .iter()
        .filter_map(|n| n.version.as_deref())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let (verdict_class, verdict_text) = match &doc.verdict {
        Some(v) if v.passed => ("pass", "matches its spec".to_owned()),
        Some(_) => ("fail", "does not match its spec".to_owned()),
        None => (
            "unknown",
            "no expected shape given (-m/-r or --spec)".to_owned(),
        ),
    };
    let errors = count_severity(&doc.findings, "error");
    let warnings = count_severity(&doc.findings, "warning");
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>clustersmith report: {} nodes, {}</title><style>{STYLE}</style></head><body>\n\
         <header><h1>Redis Cluster report</h1><p>{} of {} nodes answered · {} · read {}</p></header><main>\n",
        doc.nodes.len(),
        esc(&doc.generated_at),
        up,
        doc.nodes.len(),
        esc(&versions.join(", ")),
        esc(&doc.generated_at),
    );

    // Verdict.
    let _ = write!(
        out,
        "<section id=\"verdict\"><h2>Verdict</h2><p><span class=\"badge {verdict_class}\" id=\"verdict-badge\">{}</span> \
         <span class=\"badge {}\">{errors} error(s)</span> <span class=\"badge {}\">{warnings} warning(s)</span></p>",
        esc(&verdict_text),
        if errors > 0 { "error" } else { "pass" },
        if warnings > 0 { "warning" } else { "pass" },
    );
    if let Some(verdict) = &doc.verdict {
        out.push_str("<table><tr><th>criterion</th><th>status</th><th>nodes failing it</th></tr>");
        for c in &verdict.criteria {
            let class = match c.status.as_str() {
                "ok" => "pass",
                "fail" => "fail",
                "warning" => "warning",
                _ => "unknown",
            };
            let _ = write!(
                out,
                "<tr data-criterion=\"{}\"><td><code>{}</code> {}</td><td><span class=\"badge {class}\">{}</span></td><td>{}</td></tr>",
                esc(&c.id),
                esc(&c.id),
                esc(&c.title),
                esc(&c.status),
                c.failures
                    .iter()
                    .map(|f| esc(f))
                    .collect::<Vec<_>>()
                    .join("<br>")
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</section>\n");

    shards(&mut out, doc, &colours);
    slot_map(&mut out, doc, &colours);
    matrix(&mut out, doc);
    findings(&mut out, doc);

    if !doc.notes.is_empty() {
        out.push_str("<section id=\"notes\"><h2>Notes</h2><ul>");
        for note in &doc.notes {
            let _ = write!(out, "<li>{}</li>", esc(note));
        }
        out.push_str("</ul></section>\n");
    }
    let _ = write!(
        out,
        "<p class=\"muted\">Made by clustersmith report. The data behind this page is embedded below as JSON \
         (<code>clustersmith report --from FILE.json</code> renders it again).</p></main>\n\
         <script type=\"application/json\" id=\"clustersmith-snapshot\">{}</script>\n</body></html>\n",
        json.replace("</", "<\\/")
    );
    out
}

fn count_severity(findings: &[FindingDoc], severity: &str) -> usize {
    findings
        .iter()
        .map(|f| usize::from(f.severity == severity) + count_severity(&f.symptoms, severity))
        .sum()
}

fn link_cell(node: &NodeDoc) -> String {
    match (&node.unreachable, node.link.as_deref()) {
        (Some(why), _) => format!(
            "<span class=\"down\" title=\"{}\">not answering</span>",
            esc(why)
        ),
        (None, Some("up")) => "<span class=\"up link\">up</span>".to_owned(),
        (None, Some(other)) => format!("<span class=\"down link\">{}</span>", esc(other)),
        (None, None) => String::new(),
    }
}

/// A replica's lag: bytes behind its primary's stream, and seconds since it last heard from it.
fn lag_text(n: &NodeDoc) -> String {
    let mut parts = Vec::new();
    if let Some(b) = n.lag_bytes {
        parts.push(bytes(b));
    }
    if let Some(s) = n.last_io_seconds.filter(|s| *s >= 0) {
        parts.push(format!("{s} s"));
    }
    parts.join(" · ")
}

fn shards(out: &mut String, doc: &ReportDoc, colours: &BTreeMap<&str, String>) {
    out.push_str(
        "<section id=\"shards\"><h2>Shards</h2><table><tr><th></th><th>node</th><th>role</th><th>zone / host</th>\
         <th class=\"num\">slots</th><th class=\"num\">keys</th><th class=\"num\">memory</th><th>link</th>\
         <th class=\"num\">lag</th><th>version</th><th class=\"num\">epoch</th></tr>",
    );
    let row = |out: &mut String, n: &NodeDoc, colour: Option<&String>, indent: bool| {
        let _ = write!(
            out,
            "<tr class=\"node\" data-node=\"{}\" data-role=\"{}\" data-link=\"{}\"><td>{}</td><td>{}{}</td><td>{}</td><td>{} / {}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&n.node),
            esc(n.role.as_deref().unwrap_or("unknown")),
            esc(n.link.as_deref().unwrap_or("")),
            colour.map_or(String::new(), |c| format!(
                "<span class=\"swatch\" style=\"background:{c}\"></span>"
            )),
            if indent { "&nbsp;&nbsp;↳ " } else { "" },
            esc(&n.node),
            esc(n.role.as_deref().unwrap_or("?")),
            esc(n.zone.as_deref().unwrap_or("-")),
            esc(&n.host),
            if n.slots > 0 {
                n.slots.to_string()
            } else {
                String::new()
            },
            n.keys.map_or(String::new(), |k| k.to_string()),
            n.used_memory_bytes.map_or(String::new(), bytes),
            link_cell(n),
            lag_text(n),
            esc(n.version.as_deref().unwrap_or("")),
            n.config_epoch.map_or(String::new(), |e| e.to_string()),
        );
    };
    let mut shown: Vec<&str> = Vec::new();
    for primary in doc
        .nodes
        .iter()
        .filter(|n| n.role.as_deref() == Some("primary"))
    {
        row(out, primary, colours.get(primary.node.as_str()), false);
        shown.push(&primary.node);
        for replica in doc
            .nodes
            .iter()
            .filter(|n| n.primary.as_deref() == Some(primary.node.as_str()))
        {
            row(out, replica, None, true);
            shown.push(&replica.node);
        }
    }
    for other in doc
        .nodes
        .iter()
        .filter(|n| !shown.contains(&n.node.as_str()))
    {
        row(out, other, None, false);
    }
    out.push_str("</table></section>\n");
}

fn slot_map(out: &mut String, doc: &ReportDoc, colours: &BTreeMap<&str, String>) {
    let side = u32::from(GRID) * CELL;
    let _ = write!(
        out,
        "<section id=\"slots\"><h2>Slot map</h2><div class=\"slotmap\">\
         <svg class=\"grid\" width=\"{side}\" height=\"{side}\" viewBox=\"0 0 {side} {side}\" role=\"img\" aria-label=\"16384 slots, 128 per row\">"
    );
    let keys: BTreeMap<&str, u64> = doc
        .nodes
        .iter()
        .filter_map(|n| Some((n.node.as_str(), n.keys?)))
        .collect();
    for run in &doc.slots {
        let (fill, label) = match &run.owner {
            Some(owner) => (
                format!(
                    "fill=\"{}\"",
                    colours
                        .get(owner.as_str())
                        .cloned()
                        .unwrap_or_else(|| "#999".to_owned())
                ),
                format!(
                    "slots {}-{} ({}): {}, {} keys",
                    run.start,
                    run.end,
                    run.end - run.start + 1,
                    owner,
                    keys.get(owner.as_str())
                        .map_or("?".to_owned(), |k| k.to_string())
                ),
            ),
            None => (
                "class=\"uncovered\"".to_owned(),
                format!(
                    "slots {}-{} ({}): no owner",
                    run.start,
                    run.end,
                    run.end - run.start + 1
                ),
            ),
        };
        let _ = write!(out, "<g {fill}><title>{}</title>", esc(&label));
        for (x, y, w) in row_segments(run.start, run.end) {
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{CELL}\"/>",
                x * CELL,
                y * CELL,
                w * CELL
            );
        }
        out.push_str("</g>");
    }
    for open in &doc.open_slots {
        let (x, y) = (u32::from(open.slot % GRID), u32::from(open.slot / GRID));
        let _ = write!(
            out,
            "<circle class=\"open\" cx=\"{}\" cy=\"{}\" r=\"{}\"><title>slot {} open: {} {} {}</title></circle>",
            x * CELL + CELL / 2,
            y * CELL + CELL / 2,
            CELL * 2,
            open.slot,
            esc(&open.node),
            esc(&open.kind),
            esc(&open.peer)
        );
    }
    out.push_str("</svg><table id=\"slot-legend\"><tr><th></th><th>owner</th><th>ranges</th><th class=\"num\">slots</th><th class=\"num\">keys</th></tr>");
    let mut by_owner: BTreeMap<Option<&str>, (Vec<String>, usize)> = BTreeMap::new();
    for run in &doc.slots {
        let entry = by_owner.entry(run.owner.as_deref()).or_default();
        entry.0.push(if run.start == run.end {
            run.start.to_string()
        } else {
            format!("{}-{}", run.start, run.end)
        });
        entry.1 += usize::from(run.end - run.start) + 1;
    }
    for (owner, (ranges, count)) in &by_owner {
        match owner {
            Some(owner) => {
                let _ = write!(
                    out,
                    "<tr class=\"owner\" data-slots=\"{count}\"><td><span class=\"swatch\" style=\"background:{}\"></span></td><td>{}</td><td>{}</td><td class=\"num\">{count}</td><td class=\"num\">{}</td></tr>",
                    colours
                        .get(owner)
                        .cloned()
                        .unwrap_or_else(|| "#999".to_owned()),
                    esc(owner),
                    esc(&ranges.join(" ")),
                    keys.get(owner).map_or(String::new(), |k| k.to_string()),
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<tr class=\"uncovered\" data-slots=\"{count}\"><td><span class=\"swatch\" style=\"background:#1d2330\"></span></td><td>no owner</td><td>{}</td><td class=\"num\">{count}</td><td></td></tr>",
                    esc(&ranges.join(" ")),
                );
            }
        }
    }
    for open in &doc.open_slots {
        let _ = write!(
            out,
            "<tr class=\"open-slot\" data-slot=\"{}\"><td><span class=\"swatch\" style=\"border:2px solid #d00\"></span></td><td colspan=\"4\">slot {} open on {}: {} {}</td></tr>",
            open.slot,
            open.slot,
            esc(&open.node),
            esc(&open.kind),
            esc(&open.peer)
        );
    }
    out.push_str("</table></div></section>\n");
}

/// The row segments (x, y, width in slots) that slots `start..=end` cover in the grid.
fn row_segments(start: u16, end: u16) -> Vec<(u32, u32, u32)> {
    let mut segments = Vec::new();
    let mut slot = start;
    loop {
        let row = slot / GRID;
        let row_end = (row * GRID + GRID - 1).min(end);
        segments.push((
            u32::from(slot % GRID),
            u32::from(row),
            u32::from(row_end - slot) + 1,
        ));
        if row_end >= end {
            return segments;
        }
        slot = row_end + 1;
    }
}

fn matrix(out: &mut String, doc: &ReportDoc) {
    out.push_str(
        "<section id=\"links\"><h2>Who sees whom</h2><p class=\"muted\">Row: the node whose view it is; column: the node it lists. \
         Green ok, grey itself, amber <code>fail?</code>, red <code>fail</code>, blue <code>handshake</code>, purple link disconnected, \
         dashed not listed, light grey: the viewer did not answer.</p><table class=\"matrix\">",
    );
    for (i, row) in doc.matrix.iter().enumerate() {
        let viewer = doc.nodes.get(i).map_or("?", |n| n.node.as_str());
        let _ = write!(out, "<tr><th>{}</th>", esc(viewer));
        for (j, state) in row.iter().enumerate() {
            let class = match state.as_str() {
                "ok" => "o",
                "self" => "s",
                "pfail" => "p",
                "fail" => "f",
                "handshake" => "h",
                "disconnected" => "d",
                "unread" => "x",
                _ => "u",
            };
            if class == "o" || class == "s" {
                let _ = write!(out, "<td class=\"{class}\"></td>");
            } else {
                let subject = doc.nodes.get(j).map_or("?", |n| n.node.as_str());
                let _ = write!(
                    out,
                    "<td class=\"{class}\" title=\"{} sees {}: {}\"></td>",
                    esc(viewer),
                    esc(subject),
                    esc(state)
                );
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</table></section>\n");
}

fn findings(out: &mut String, doc: &ReportDoc) {
    out.push_str("<section id=\"findings\"><h2>Findings</h2>");
    if doc.findings.is_empty() {
        out.push_str("<p>diagnose found nothing wrong.</p>");
    }
    for finding in &doc.findings {
        finding_html(out, finding);
    }
    out.push_str("</section>\n");
}

fn finding_html(out: &mut String, f: &FindingDoc) {
    let _ = write!(
        out,
        "<details open class=\"finding {}\" data-rule=\"{}\"><summary><span class=\"badge {}\">{}</span> <code>{}</code> {} on {}: {}</summary><ul>",
        esc(&f.severity),
        esc(&f.rule),
        esc(&f.severity),
        esc(&f.severity),
        esc(&f.rule),
        esc(&f.name),
        esc(f.node.as_deref().unwrap_or("the cluster")),
        esc(&f.summary)
    );
    for evidence in &f.evidence {
        let _ = write!(out, "<li><code>{}</code></li>", esc(evidence));
    }
    let _ = write!(
        out,
        "</ul><p><b>Fix:</b> {}</p><details><summary>{} explained</summary><p>{}</p><p>{}</p></details>",
        esc(&f.fix),
        esc(&f.rule),
        esc(&f.detects),
        esc(&f.why)
    );
    for symptom in &f.symptoms {
        finding_html(out, symptom);
    }
    out.push_str("</details>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_cut_at_row_ends() {
        assert_eq!(row_segments(0, 5460).len(), 43);
        assert_eq!(row_segments(0, 127), [(0, 0, 128)]);
        assert_eq!(row_segments(120, 130), [(120, 0, 8), (0, 1, 3)]);
        let covered: u32 = row_segments(5461, 10922).iter().map(|s| s.2).sum();
        assert_eq!(covered, 5462);
    }

    #[test]
    fn text_and_embedded_json_cannot_break_out() {
        assert_eq!(esc("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
        let doc = ReportDoc {
            schema_version: 1,
            command: "report".into(),
            generated_at: "</script><script>alert(1)</script>".into(),
            verdict: None,
            nodes: Vec::new(),
            slots: Vec::new(),
            open_slots: Vec::new(),
            matrix: Vec::new(),
            findings: Vec::new(),
            notes: Vec::new(),
        };
        let json = serde_json::to_string(&doc).unwrap();
        let html = render(&doc, &json);
        // Outside the data block the text is escaped; inside it, nothing can end the block
        // early (a script element's text ends only at `</script`), so the one `</script>`
        // is the block's own.
        let (before, data) = html.split_once("id=\"clustersmith-snapshot\">").unwrap();
        assert!(!before.contains("<script>"), "{before}");
        assert_eq!(data.matches("</script").count(), 1, "{data}");
        let embedded = data
            .split("</script>")
            .next()
            .unwrap()
            .replace("<\\/", "</");
        assert_eq!(serde_json::from_str::<ReportDoc>(&embedded).unwrap(), doc);
    }
}
