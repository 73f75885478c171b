//! Helpers for the server's integration tests: the shared fixture readers, and a real server
//! process (`server`).
#![allow(dead_code, unused_imports)]

pub use siglip_test_support::*;

pub mod server;
