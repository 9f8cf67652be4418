//! placeholder, replaced by the compile benchmark
fn main() {}
