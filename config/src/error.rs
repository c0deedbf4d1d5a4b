//! Profile errors: what was wrong, where in the YAML tree, and at which line and column of the file.
//! A profile is checked completely before anything starts, so errors are collected, not returned one by one.

use std::fmt;

/// One step of a path through the YAML tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Where a node sits in the YAML tree, printed like `rules[3].port`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    /// The document root.
    pub fn root() -> Self {
        YamlPath(Vec::new())
    }

    /// The path of the value under `key` of this mapping.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_string()));
        YamlPath(segments)
    }

    /// The path of element `index` of this sequence.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        YamlPath(segments)
    }

    /// The segments from the root down.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A 1-based position in the profile file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// One thing wrong with a profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileError {
    /// The YAML node the error is about.
    pub path: YamlPath,
    /// Its position in the file, when it could be found.
    pub location: Option<Location>,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(at) => write!(f, "line {}, column {}: ", at.line, at.column)?,
            None => f.write_str("(no position): ")?,
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a profile could not be loaded: the file could not be read, or it holds one or more errors.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The profile file itself could not be read.
    #[error("cannot read profile {path}: {source}")]
    Read {
        /// The file asked for.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The profile was read and is wrong; every error found is listed, in file order.
    #[error("{} error(s) in profile {}", .errors.len(), .file)]
    Invalid {
        /// The file name, as given.
        file: String,
        /// All errors, sorted by position.
        errors: Vec<ProfileError>,
    },
}

impl LoadError {
    /// Every error as `file:line:column: path: message`, one per line, the form editors jump to.
    pub fn report(&self) -> String {
        match self {
            LoadError::Read { .. } => self.to_string(),
            LoadError::Invalid { file, errors } => {
                let mut out = String::new();
                for error in errors {
                    match error.location {
                        Some(at) => out.push_str(&format!("{file}:{}:{}: ", at.line, at.column)),
                        None => out.push_str(&format!("{file}: ")),
                    }
                    out.push_str(&format!("{}: {}\n", error.path, error.message));
                }
                out.push_str(&format!("{} error(s)\n", errors.len()));
                out
            }
        }
    }
}
