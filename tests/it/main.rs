//! Integration tests, one binary (as ripgrep does): each module is one area.

mod sandbox;
