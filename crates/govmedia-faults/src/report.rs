//! A scenario's figures: each a measured value beside what the promise requires, so a
//! report says at a glance whether the promise held and by how much.

use std::fmt;

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The value, as printed.
    pub value: String,
    /// What the promise requires, as printed (empty for context figures).
    pub required: String,
    /// Whether the value meets the requirement (context figures always do).
    pub holds: bool,
}

/// A scenario's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// How to run exactly this again (the seed included).
    pub rerun: String,
    /// The figures, in the order measured.
    pub figures: Vec<Figure>,
    /// The cases that broke the promise, described for people (at most a few).
    pub failures: Vec<String>,
}

impl Report {
    /// An empty report for `scenario`, rerun with `rerun`.
    pub fn new(scenario: &str, rerun: String) -> Self {
        Self { scenario: scenario.to_owned(), rerun, ..Self::default() }
    }

    /// Adds a figure that must meet `required`.
    pub fn require(&mut self, name: &str, value: impl fmt::Display, required: &str, holds: bool) {
        self.figures.push(Figure {
            name: name.to_owned(),
            value: value.to_string(),
            required: required.to_owned(),
            holds,
        });
    }

    /// Adds a figure for context.
    pub fn note(&mut self, name: &str, value: impl fmt::Display) {
        self.figures.push(Figure {
            name: name.to_owned(),
            value: value.to_string(),
            required: String::new(),
            holds: true,
        });
    }

    /// Whether every required figure held.
    pub fn holds(&self) -> bool {
        self.figures.iter().all(|f| f.holds)
    }

    /// A figure's value by name.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.figures.iter().find(|f| f.name == name).map(|f| f.value.as_str())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario: {}", self.scenario)?;
        writeln!(f, "rerun:    {}", self.rerun)?;
        let width = self.figures.iter().map(|x| x.name.chars().count()).max().unwrap_or(0);
        for figure in &self.figures {
            let verdict = match (figure.required.is_empty(), figure.holds) {
                (true, _) => String::new(),
                (false, true) => format!("  (required {}: holds)", figure.required),
                (false, false) => format!("  (required {}: BROKEN)", figure.required),
            };
            writeln!(f, "  {:width$}  {}{verdict}", figure.name, figure.value)?;
        }
        for failure in &self.failures {
            writeln!(f, "  failed: {failure}")?;
        }
        write!(f, "{}", if self.holds() { "the promise held" } else { "THE PROMISE WAS BROKEN" })
    }
}
