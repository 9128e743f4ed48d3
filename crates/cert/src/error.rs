//! Errors of parsing certificates and their extensions.

/// A certificate (or one of its extensions) could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate")]
    Der(#[source] der::Error),
    /// The text is not a PEM `CERTIFICATE` block.
    #[error("not a PEM certificate")]
    Pem(#[source] der::Error),
    /// An extension the classification needs is malformed.
    #[error("malformed {extension} extension")]
    Extension {
        /// Which extension.
        extension: &'static str,
        /// The decoding error.
        #[source]
        source: der::Error,
    },
    /// The subject public key is not an RSA key this crate can use.
    #[error("subject public key is not a usable RSA key")]
    PublicKey(#[source] rsa::pkcs8::spki::Error),
}
