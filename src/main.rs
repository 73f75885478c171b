//! placeholder while building
fn main() {}
