//! Signing with the My Number Card's JPKI keys, and checking what was signed.
//!
//! - [`HashAlgorithm`] (SHA-256/384/512) and [`DigestInfo`]: the card signs a caller-built
//!   DigestInfo with RSASSA-PKCS1-v1_5 (`80 2A 00 80`, P1 `00`).
//! - [`verify_pkcs1v15`], [`verify_pkcs1v15_message`], [`verify_pss`]: signature verification.
//! - [`DigestInfoSigner`]: the seam a card key (or a [`SoftwareSigner`]) plugs into.
//! - [`cms`]: CMS `SignedData`, attached or detached, with content-type, message-digest,
//!   signing-time and signing-certificate-v2 signed attributes, accepted by
//!   `openssl cms -verify`; and its verification.
//! - [`CardRsaSigner`]: RustCrypto [`signature::AsyncSigner`] + [`signature::Keypair`] over any
//!   [`DigestInfoSigner`].
//! - `card` (feature `card`): a verified card key from `mynacard-card` as a [`DigestInfoSigner`].
//!
//! ```
//! use mynacard_sign::{DigestInfo, HashAlgorithm};
//!
//! let di = DigestInfo::of(HashAlgorithm::Sha256, b"hello");
//! assert_eq!(di.to_der().len(), 51);
//! assert_eq!(DigestInfo::from_der(&di.to_der()).unwrap(), di);
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "card")]
pub mod card;
pub mod cms;
mod digest_info;
mod hash;
mod rustcrypto;
mod signer;
mod software;
mod verify;

pub use digest_info::{DigestInfo, DigestInfoError};
pub use hash::{HashAlgorithm, Hasher};
pub use rustcrypto::{CardRsaSigner, SupportedHash};
pub use signer::{DigestInfoSigner, SignerError};
pub use software::{SoftwareSigner, SoftwareSignerError};
pub use verify::{VerifyError, verify_pkcs1v15, verify_pkcs1v15_message, verify_pss};

/// Re-exported so callers can name the RustCrypto traits this crate implements.
pub use signature;
