//! `vpn status` as a table: one row per node (tunnel address, result, last handshake, why),
//! a diagnosis that every failing node shares printed once under the table instead of on
//! every row, and each remedy once.

use k0rdent_core::remedy::Remedy;
use k0rdent_ssh::wireguard::{TunnelReport, diagnosis::human_secs};

use super::{Cell, Paint, Table};

/// The report's header line, table, shared diagnosis and remedies.
pub fn render(report: &TunnelReport, table_text: impl Fn(&Table) -> String) -> String {
    let mut out = String::new();
    // The report's own first line: interface, device state, peer count, time taken.
    if let Some(first) = report.to_string().lines().next() {
        out.push_str(first);
        out.push('\n');
    }
    let failing: Vec<_> = report.peers.iter().filter(|p| !p.is_alive()).collect();
    let shared = match failing.first() {
        Some(first) if failing.len() > 1 && failing.len() == report.peers.len() => {
            let reason = first.reason();
            failing
                .iter()
                .all(|p| p.reason() == reason)
                .then_some(reason)
        }
        _ => None,
    };
    let mut table = Table::new(&["NODE", "TUNNEL IP", "RESULT", "HANDSHAKE", "DIAGNOSIS"]);
    for p in &report.peers {
        let paint = if p.is_alive() {
            Paint::Green
        } else {
            Paint::Red
        };
        let handshake = p
            .last_handshake_secs
            .map_or_else(|| "-".to_owned(), |s| format!("{} ago", human_secs(s)));
        let why = match &shared {
            Some(_) => "(below)".to_owned(),
            None => p.reason(),
        };
        table.row(vec![
            Cell::new(p.name.clone()),
            Cell::new(p.tunnel_ip.to_string()),
            Cell::painted(p.status_word(), paint),
            Cell::new(handshake),
            Cell::new(why),
        ]);
    }
    if !table.is_empty() {
        out.push_str(&table_text(&table));
    }
    if let Some(reason) = shared {
        out.push_str(&format!("All {} nodes: {reason}\n", failing.len()));
    }
    let mut remedies: Vec<String> = Vec::new();
    for r in failing.iter().filter_map(|p| p.remedy()) {
        if !remedies.iter().any(|x| x == r.as_ref()) {
            remedies.push(r.into_owned());
        }
    }
    for r in remedies {
        out.push_str(&format!("hint: {r}\n"));
    }
    out
}
