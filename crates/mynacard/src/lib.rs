//! mynacard: use the Japanese My Number Card (マイナンバーカード) from Rust.
//!
//! This facade re-exports the workspace's crates under one name:
//!
//! - [`apdu`]: the ISO/IEC 7816-4 codec ([`mynacard_apdu`]).
//! - [`transport`]: the transport seam ([`mynacard_transport`]).

pub use mynacard_apdu as apdu;
pub use mynacard_transport as transport;
