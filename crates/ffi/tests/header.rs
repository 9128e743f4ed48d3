//! The committed C header is what cbindgen makes of the crate now. A stale header fails with
//! the command that regenerates it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

use std::path::Path;

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn the_committed_header_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/mynacard.h");
    let fresh = generate();
    if std::env::var_os("MYNACARD_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write the header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        panic!(
            "{} is stale: it differs from the generated header from line {}:\n  committed: {:?}\n  generated: {:?}\nregenerate it with: MYNACARD_BLESS=1 cargo test -p mynacard-ffi --test header",
            path.display(),
            first + 1,
            committed.lines().nth(first).unwrap_or("<end of file>"),
            fresh.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}

#[test]
fn the_header_declares_every_entry_point() {
    let header = generate();
    for name in [
        "mynacard_session_open",
        "mynacard_client_run",
        "mynacard_outcome_kind",
        "mynacard_string_free",
        "mynacard_sim_transmit",
        "mynacard_sim_service_start",
        "MYNACARD_STATUS_OK",
        "MYNACARD_OUTCOME_KIND_REGISTERED",
    ] {
        assert!(header.contains(name), "the header lacks {name}");
    }
    assert!(
        header.contains("#if defined(MYNACARD_SIM)"),
        "the sim functions are not behind MYNACARD_SIM"
    );
}
