//! `sqlx::migrate!` embeds the SQL files at compile time; this makes a new or
//! edited migration trigger a rebuild of the crate.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
