//! Tables the views share: built once from a report or a period summary, written as Markdown
//! or HTML, so the two never disagree on what a table holds.

use std::fmt::Write;

use super::escape_xml;

pub struct Table {
    columns: Vec<(&'static str, bool)>,
    rows: Vec<Vec<Cell>>,
    /// Said instead of the table when it has no rows.
    empty: &'static str,
}

/// One cell; an alarm (a missed target, a failed signature) is emphasised in every view.
pub struct Cell {
    pub text: String,
    pub alarm: bool,
}

impl Cell {
    pub fn alarm(text: impl Into<String>, alarm: bool) -> Cell {
        Cell {
            text: text.into(),
            alarm,
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::alarm(text, false)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::alarm(text, false)
    }
}

impl Table {
    /// Columns as (title, numeric); numeric columns are right-aligned.
    pub fn new(columns: &[(&'static str, bool)], empty: &'static str) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
            empty,
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    pub fn markdown(&self, o: &mut String) {
        if self.rows.is_empty() {
            let _ = writeln!(o, "{}", self.empty);
            return;
        }
        let titles: Vec<&str> = self.columns.iter().map(|(t, _)| *t).collect();
        let rules: Vec<&str> = self
            .columns
            .iter()
            .map(|(_, numeric)| if *numeric { "---:" } else { "---" })
            .collect();
        let _ = writeln!(o, "| {} |\n|{}|", titles.join(" | "), rules.join("|"));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| {
                    let text = md_cell(&c.text);
                    if c.alarm { format!("**{text}**") } else { text }
                })
                .collect();
            let _ = writeln!(o, "| {} |", cells.join(" | "));
        }
    }

    pub fn html(&self, o: &mut String, id: Option<&str>) {
        if self.rows.is_empty() {
            let _ = writeln!(o, "<p>{}</p>", escape_xml(self.empty));
            return;
        }
        let id = id.map(|i| format!(" id=\"{i}\"")).unwrap_or_default();
        let _ = write!(o, "<table{id}>\n<tr>");
        for (title, _) in &self.columns {
            let _ = write!(o, "<th>{}</th>", escape_xml(title));
        }
        let _ = writeln!(o, "</tr>");
        for row in &self.rows {
            let _ = write!(o, "<tr>");
            for (c, (_, numeric)) in row.iter().zip(&self.columns) {
                let class = match (*numeric, c.alarm) {
                    (true, true) => " class=\"num alarm\"",
                    (true, false) => " class=\"num\"",
                    (false, true) => " class=\"alarm\"",
                    (false, false) => "",
                };
                let _ = write!(o, "<td{class}>{}</td>", escape_xml(&c.text));
            }
            let _ = writeln!(o, "</tr>");
        }
        let _ = writeln!(o, "</table>");
    }
}

/// Markdown cell text that cannot break the table.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Label and value rows (facts about a drill, its measurements): Markdown.
pub fn pairs_markdown(o: &mut String, rows: &[(&str, String)]) {
    let _ = writeln!(o, "| | |\n|---|---|");
    for (k, v) in rows {
        let _ = writeln!(o, "| {k} | {} |", md_cell(v));
    }
}

/// Label and value rows: HTML, labels as row headers.
pub fn pairs_html(o: &mut String, rows: &[(&str, String)]) {
    let _ = writeln!(o, "<table>");
    for (k, v) in rows {
        let _ = writeln!(
            o,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape_xml(k),
            escape_xml(v)
        );
    }
    let _ = writeln!(o, "</table>");
}
