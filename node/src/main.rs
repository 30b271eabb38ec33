//! `waggle`: the broker binary.

fn main() {
    eprintln!("waggle: the broker is not built yet; see README.md");
    std::process::exit(2);
}
