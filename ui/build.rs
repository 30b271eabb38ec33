//! Bundles the web applications in `web/` (esbuild, from the packages pinned
//! by `web/package-lock.json`) into `$OUT_DIR/assets`, and writes
//! `$OUT_DIR/assets.rs`: every file with its bytes, content type and ETag,
//! for `include!` in `src/lib.rs`.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    let web = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("web");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    for input in ["src", "build.mjs", "package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    install(&web);
    let assets = out.join("assets");
    let _ = fs::remove_dir_all(&assets);
    run(
        Command::new("node")
            .arg("build.mjs")
            .arg(&assets)
            .current_dir(&web),
        "node build.mjs (bundling Operate and Tasklist)",
    );
    let mut files = Vec::new();
    collect(&assets, &assets, &mut files);
    files.sort();
    let mut code = String::from("&[\n");
    for (name, path) in &files {
        let bytes = fs::read(path).unwrap();
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        writeln!(
            code,
            "    Asset {{ path: {name:?}, bytes: include_bytes!({path:?}), etag: \"\\\"{:016x}\\\"\" }},",
            hasher.finish(),
            path = path.display().to_string(),
        )
        .unwrap();
    }
    code.push(']');
    fs::write(out.join("assets.rs"), code).unwrap();
}

/// `npm ci` unless `node_modules` already holds what the lockfile says (the
/// same marker as `setup_npm_dir` in scripts/lib/setup.sh).
fn install(web: &Path) {
    let lock = fs::read(web.join("package-lock.json")).unwrap();
    let marker = web.join("node_modules/.installed-lock.json");
    if fs::read(&marker).ok().as_deref() == Some(&lock[..]) {
        return;
    }
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(web),
        "npm ci in ui/web (the UI's pinned packages)",
    );
    fs::write(marker, lock).unwrap();
}

fn run(command: &mut Command, what: &str) {
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("{what} failed ({status})"),
        Err(e) => panic!(
            "{what} could not start ({e}): building the UI needs Node.js 18 or later and npm \
             (apt-get install nodejs npm; scripts/dev.sh and scripts/test.sh install them)"
        ),
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.push((name, path));
        }
    }
}
