//! Everything commands print: tables for people (sized to the terminal), JSON for scripts,
//! progress bars only on a terminal. Writes return errors instead of panicking, so that a
//! closed pipe (`registry … | head`) ends the program quietly with status 0.

use std::io::{IsTerminal, Write};

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::cli::GlobalArgs;

pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

impl Out {
    pub fn new(global: &GlobalArgs) -> Out {
        Out {
            json: global.json,
            quiet: global.quiet,
        }
    }

    /// A line of stdout, always printed (the answer the user asked for).
    pub fn line(&self, text: impl std::fmt::Display) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")?;
        Ok(())
    }

    /// A confirmation of something done; silent with --quiet or --json.
    pub fn done(&self, text: impl std::fmt::Display) -> anyhow::Result<()> {
        if self.quiet || self.json {
            return Ok(());
        }
        self.line(text)
    }

    pub fn json(&self, value: &impl Serialize) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value).map_err(std::io::Error::from)?;
        writeln!(stdout)?;
        Ok(())
    }

    /// A table for people: `headers` and one row per item.
    pub fn table(&self, headers: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
        let mut table = Table::new();
        if std::io::stdout().is_terminal() {
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic);
        } else {
            table
                .load_preset(comfy_table::presets::NOTHING)
                .set_content_arrangement(ContentArrangement::Disabled);
        }
        table.set_header(headers.to_vec());
        for row in rows {
            table.add_row(row);
        }
        self.line(table.trim_fmt())
    }

    /// A progress bar on stderr, drawn only when stderr is a terminal and not --quiet.
    pub fn progress(&self, total: u64, message: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.to_string());
        bar
    }
}

pub fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_string())
}

/// 1234567 → "1.2 MB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Whether a yes/no question can be asked: stdin and stderr are terminals.
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}
