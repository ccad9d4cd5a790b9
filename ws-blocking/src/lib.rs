//! Adapter crate: see the project README. Filled by a later issue.
