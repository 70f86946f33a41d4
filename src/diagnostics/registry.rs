//! How a plugin publishes a metric: it registers its own [`DiagnosticPath`]s with their units
//! (Bevy's pattern) and describes the F3 overlay's row for them. The overlay, the plots and the
//! app's CSV recording are driven by this table, so a new metric is one row in the plugin that
//! owns it, and this module knows nothing of what the rows mean.

use std::collections::HashMap;

use bevy::diagnostic::{Diagnostic, DiagnosticPath, RegisterDiagnostic};
use bevy::prelude::*;

/// Where a row stands in the overlay: sections in this order, rows in registration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Frame,
    Process,
    Gpu,
    Llm,
    Voice,
    Avatar,
}

/// What a row shows.
#[derive(Debug, Clone)]
pub enum RowValue {
    /// One value: `{value:.digits}{unit}`.
    Metric {
        path: DiagnosticPath,
        unit: &'static str,
        digits: usize,
    },
    /// `used / total unit`, amber above `amber` and red above `red` (shares of total).
    Share {
        used: DiagnosticPath,
        total: DiagnosticPath,
        unit: &'static str,
        amber: f64,
        red: f64,
    },
    /// A line of text that the owning plugin keeps in [`MetricTexts`] under the row's label.
    Text,
}

/// One row of the F3 overlay.
#[derive(Debug, Clone)]
pub struct OverlayRow {
    pub section: Section,
    pub label: &'static str,
    pub value: RowValue,
    /// Also in the compact one-line overlay.
    pub compact: bool,
    /// Plotted over the last minute, in this colour (a share is plotted in percent).
    pub plot: Option<[u8; 3]>,
    /// A column of the app's CSV recording, under this name.
    pub csv: Option<&'static str>,
}

impl OverlayRow {
    pub fn metric(
        section: Section,
        label: &'static str,
        path: DiagnosticPath,
        unit: &'static str,
        digits: usize,
    ) -> Self {
        Self {
            section,
            label,
            value: RowValue::Metric { path, unit, digits },
            compact: false,
            plot: None,
            csv: None,
        }
    }

    pub fn text(section: Section, label: &'static str) -> Self {
        Self {
            section,
            label,
            value: RowValue::Text,
            compact: false,
            plot: None,
            csv: None,
        }
    }

    pub fn compact(self) -> Self {
        Self {
            compact: true,
            ..self
        }
    }

    pub fn plot(self, color: [u8; 3]) -> Self {
        Self {
            plot: Some(color),
            ..self
        }
    }

    pub fn csv(self, column: &'static str) -> Self {
        Self {
            csv: Some(column),
            ..self
        }
    }
}

/// Every row, in overlay order.
#[derive(Resource, Debug, Default)]
pub struct OverlayRows(Vec<OverlayRow>);

impl OverlayRows {
    pub fn iter(&self) -> impl Iterator<Item = &OverlayRow> {
        self.0.iter()
    }

    fn add(&mut self, row: OverlayRow) {
        // Stable: rows of one section keep their registration order.
        let at = self.0.partition_point(|r| r.section <= row.section);
        self.0.insert(at, row);
    }
}

/// Text rows' current lines, by row label.
#[derive(Resource, Debug, Default)]
pub struct MetricTexts(pub HashMap<&'static str, String>);

pub trait MetricsAppExt {
    /// Registers a diagnostic with its unit.
    fn register_metric(&mut self, path: DiagnosticPath, unit: &'static str) -> &mut Self;
    /// Adds a row to the overlay.
    fn add_overlay_row(&mut self, row: OverlayRow) -> &mut Self;
}

impl MetricsAppExt for App {
    fn register_metric(&mut self, path: DiagnosticPath, unit: &'static str) -> &mut Self {
        self.register_diagnostic(Diagnostic::new(path).with_suffix(unit))
    }

    fn add_overlay_row(&mut self, row: OverlayRow) -> &mut Self {
        self.init_resource::<OverlayRows>()
            .init_resource::<MetricTexts>();
        self.world_mut().resource_mut::<OverlayRows>().add(row);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_ordered_by_section_then_registration() {
        let mut rows = OverlayRows::default();
        rows.add(OverlayRow::text(Section::Llm, "a"));
        rows.add(OverlayRow::text(Section::Frame, "b"));
        rows.add(OverlayRow::text(Section::Llm, "c"));
        rows.add(OverlayRow::text(Section::Frame, "d"));
        let labels: Vec<_> = rows.iter().map(|r| r.label).collect();
        assert_eq!(labels, ["b", "d", "a", "c"]);
    }
}
