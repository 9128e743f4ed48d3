//! UniFFI's bindings generator, as UniFFI documents it: run in library mode on the built
//! `libmynacard_mobile` (see the crate's README and `bindings/generate.sh`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
