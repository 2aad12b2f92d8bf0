//! An organisation's content: agent records, the canvas viewport, and
//! (as they arrive) templates, files, team expand/collapse, org import and
//! bundles.

pub mod agents;
pub mod bundles;
pub mod canvas;
pub mod files;
pub mod org;
pub mod paths;
pub mod plugins;
pub mod team;
pub mod templates;
