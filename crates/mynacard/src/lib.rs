//! mynacard: use the Japanese My Number Card (マイナンバーカード) from Rust.
//!
//! One dependency for the whole workspace: every library crate is re-exported here under a
//! short module name, so a kiosk, an ATM, a phone app's core or a service writes
//! `mynacard::card::Session` instead of tracking a dozen crate versions.
//!
//! # A short tour
//!
//! | Module | Crate | What it is for |
//! |---|---|---|
//! | [`apdu`] | `mynacard-apdu` | The ISO/IEC 7816-4 codec: commands, responses, status words, `61xx`/`6Cxx`, chaining, TLV. Card-agnostic, no I/O. |
//! | [`transport`] | `mynacard-transport` | The seam every reader plugs into: `Transport`, `CardChannel`, `Capabilities`, `TransportError`, and a blocking adapter. |
//! | [`card`] | `mynacard-card` | The card's catalogue and its operations as sans-I/O values (`ops`), and the session over any channel: JPKI certificates, PIN status, VERIFY and signing behind PIN-safe types; the text, visual and common applications. |
//! | [`cert`] | `mynacard-cert` | JPKI certificates: kinds, personal data, chains to the embedded J-LIS roots, CRLs and revocation. |
//! | [`sign`] | `mynacard-sign` | Hashes, `DigestInfo`, signature verification, CMS `SignedData`; a verified card key as a signer ([`sign::card`]). |
//! | [`registration`] | `mynacard-registration` | Health-insurance-use registration and eligibility: sans-I/O state machines, typed outcomes, and (features `driver`, `http`) an async driver and the service client. |
//! | `pcsc` | `mynacard-pcsc` | PC/SC readers (feature `pcsc`). |
//! | `nfc` | `mynacard-nfc` | A phone's NFC transceive as a transport (feature `nfc`). |
//! | `sim` | `mynacard-sim` | The simulated card and its `O=JPKI-TEST` hierarchy (feature `sim`). |
//! | `trace` | `mynacard-trace` | Redacted APDU traces: record from any transport, replay in tests (feature `trace`). |
//!
//! A program usually goes: a transport (`pcsc`, `nfc` or `sim`) opens a channel; a
//! [`card::Session`] runs over it; certificates go to [`cert`] for a trust decision; signatures
//! come from a verified handle ([`card::jpki::VerifiedAuth`]); or a [`registration::Machine`]
//! runs a whole registration while the terminal supplies the consent screen, PIN pad and HTTP.
//!
//! # Cargo features
//!
//! | Feature | Default | Adds |
//! |---|---|---|
//! | `http` | yes | `registration::http` (reqwest + rustls, on tokio); implies `driver` |
//! | `driver` | yes (through `http`) | `registration::driver`, runtime-agnostic |
//! | `nfc` | yes | the `nfc` module (pure Rust) |
//! | `trace` | yes | the `trace` module (pure Rust) |
//! | `pcsc` | no | the `pcsc` module; links the platform's PC/SC library (libpcsclite on Linux) |
//! | `sim` | no | the `sim` module: the simulated card, for tests, demos and integration work |
//!
//! A service that only verifies proofs can take `default-features = false`: no async runtime,
//! no HTTP stack. Test keys of the simulator never reach a product built without `sim`.
//!
//! # Example
//!
//! Open a simulated card (feature `sim`), read its authentication certificate and check how
//! many PIN tries are left. The PIN status comes from an empty VERIFY, which spends nothing.
//!
//! (Without the `sim` feature the example is shown, not run.)
//!
#![cfg_attr(feature = "sim", doc = "```")]
#![cfg_attr(not(feature = "sim"), doc = "```ignore")]
//! use mynacard::card::jpki::{JpkiKey, PublicCertificate};
//! use mynacard::card::{PinStatus, Session};
//! use mynacard::cert::{CertKind, Hierarchy, JpkiCertificate};
//! use mynacard::sim::{image::CardImage, inprocess::SimCard};
//! use mynacard::transport::blocking::block_on;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let card = SimCard::from_image(CardImage::from_profile_name("adult")?);
//! let mut session = Session::new(card.channel());
//!
//! let (certificate, pin) = block_on(async {
//!     let mut jpki = session.jpki().await?;
//!     let certificate = jpki.read_certificate(PublicCertificate::Auth).await?;
//!     let pin = jpki.pin_status(JpkiKey::Auth).await?;
//!     Ok::<_, mynacard::card::Error>((certificate, pin))
//! })?;
//!
//! let certificate = JpkiCertificate::from_der(certificate.der())?;
//! assert_eq!(certificate.kind(), CertKind::Authentication);
//! assert_eq!(certificate.hierarchy(), Hierarchy::Test);
//! assert_eq!(pin, PinStatus::Remaining(3));
//!
//! let traffic = session.stats();
//! println!("{} APDUs, {} bytes in", traffic.commands, traffic.bytes_received);
//! # Ok(())
//! # }
//! ```
//!
//! The workspace's `examples/` show whole terminals through this crate: a clinic kiosk
//! (`kiosk.rs`), an ATM (`atm.rs`) and a phone app driving the registration machine by hand
//! (`smartphone_host.rs`).

pub use mynacard_apdu as apdu;
pub use mynacard_card as card;
pub use mynacard_cert as cert;
pub use mynacard_registration as registration;
pub use mynacard_sign as sign;
pub use mynacard_transport as transport;

#[cfg(feature = "nfc")]
pub use mynacard_nfc as nfc;
#[cfg(feature = "pcsc")]
pub use mynacard_pcsc as pcsc;
#[cfg(feature = "sim")]
pub use mynacard_sim as sim;
#[cfg(feature = "trace")]
pub use mynacard_trace as trace;
