//! The Target trait (in progress).
