//! The recorded card image's description (`card.toml`): any text gives an image or a typed
//! error, never a panic. The data files it names are looked for under a directory that does not
//! exist, so every file reference ends in the loader's typed I/O error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mynacard_sim::recorded::RecordedImage;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = RecordedImage::parse(
        text,
        Path::new("card.toml"),
        Path::new("/nonexistent/mynacard-fuzz-image"),
    );
});
