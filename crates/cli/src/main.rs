//! The `mynacard` command.
fn main() {}
