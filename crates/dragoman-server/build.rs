//! Builds the web client in `web/` (TypeScript, bundled by esbuild) and embeds the result in the
//! binary, so `cargo run --bin dragoman -- serve` serves it with no extra step.
//!
//! `npm ci` runs when `web/node_modules` is missing; then `node build.mjs $OUT_DIR/web`. If the build
//! cannot run (no Node.js, no network for the first `npm ci`), the server still builds and serves a
//! page that says what went wrong; the test command builds the client on its own and fails loudly.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let web = manifest.join("../../web");
    for watched in [
        "src",
        "static",
        "build.mjs",
        "package.json",
        "package-lock.json",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=DRAGOMAN_SKIP_WEB_BUILD");

    let target = out_dir.join("web");
    let outcome = if std::env::var_os("DRAGOMAN_SKIP_WEB_BUILD").is_some() {
        Err("the web client build was skipped (DRAGOMAN_SKIP_WEB_BUILD is set)".to_owned())
    } else {
        build_web(&web, &target)
    };
    let mut assets = Vec::new();
    let error = match outcome {
        Ok(()) => {
            collect(&target, &target, &mut assets);
            None
        }
        Err(e) => {
            println!("cargo:warning=web client not built: {e}");
            Some(e)
        }
    };
    assets.sort();
    let mut code =
        String::from("/// Built web client files: (path relative to the bundle root, contents).\n");
    code.push_str("pub static ASSETS: &[(&str, &[u8])] = &[\n");
    for (name, path) in &assets {
        let _ = writeln!(code, "    ({name:?}, include_bytes!({path:?})),");
    }
    code.push_str("];\n");
    code.push_str("/// Why the web client is missing, when it is.\n");
    let _ = writeln!(code, "pub static BUILD_ERROR: Option<&str> = {error:?};");
    std::fs::write(out_dir.join("web_assets.rs"), code).expect("write web_assets.rs");
}

fn build_web(web: &Path, target: &Path) -> Result<(), String> {
    if !web.join("package.json").exists() {
        return Err(format!("{} has no package.json", web.display()));
    }
    if !web.join("node_modules").exists() {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
                .current_dir(web),
            "npm ci (install Node.js 18+ and npm)",
        )?;
    }
    let _ = std::fs::remove_dir_all(target);
    run(
        Command::new("node")
            .arg("build.mjs")
            .arg(target)
            .current_dir(web),
        "node build.mjs",
    )
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("could not start {what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn collect(root: &Path, dir: &Path, assets: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, assets);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let name = relative.to_string_lossy().replace('\\', "/");
            assets.push((name, path.display().to_string()));
        }
    }
}
