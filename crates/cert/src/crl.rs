//! Certificate revocation lists.

use std::time::SystemTime;

use der::{Decode, oid::ObjectIdentifier};
use x509_cert::{crl::CertificateList, name::Name};

use crate::{
    certificate::{JpkiCertificate, pem_block},
    error::ParseError,
    names,
    revocation::RevocationReason,
    sigalg::{self, SignatureError},
};

const CRL_REASON: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.21");

/// A CRL could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The bytes are not a DER or PEM CRL.
    #[error("not an X.509 CRL")]
    Parse(#[source] ParseError),
    /// The CRL's issuer name is not the certificate's subject.
    #[error("CRL issuer {crl_issuer} is not {expected}")]
    IssuerMismatch {
        /// The CRL's issuer.
        crl_issuer: String,
        /// The certificate it was checked against.
        expected: String,
    },
    /// The issuer certificate's key usage does not allow signing CRLs.
    #[error("issuer certificate is not allowed to sign CRLs")]
    IssuerCannotSignCrls,
    /// The signature does not verify with the issuer's key.
    #[error("CRL signature does not verify")]
    Signature(#[source] SignatureError),
}

/// One revoked certificate in a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number, big-endian, leading zeros stripped.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub date: SystemTime,
    /// The entry's reason code, if given.
    pub reason: Option<RevocationReason>,
}

/// A parsed X.509 CRL.
#[derive(Debug, Clone)]
pub struct Crl {
    der: Vec<u8>,
    list: CertificateList,
}

impl Crl {
    /// Parses a DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Crl, CrlError> {
        let list =
            CertificateList::from_der(der).map_err(|e| CrlError::Parse(ParseError::Der(e)))?;
        Ok(Crl {
            der: der.to_vec(),
            list,
        })
    }

    /// Parses the first `-----BEGIN X509 CRL-----` block of a PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Crl, CrlError> {
        let der = pem_block(pem, "X509 CRL").map_err(CrlError::Parse)?;
        Crl::from_der(&der)
    }

    /// Parses DER, or PEM when the bytes do not start like DER.
    pub fn from_der_or_pem(bytes: &[u8]) -> Result<Crl, CrlError> {
        if bytes.first() == Some(&0x30) {
            Crl::from_der(bytes)
        } else {
            Crl::from_pem(bytes)
        }
    }

    /// The CRL as parsed (DER).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The underlying X.509 structure.
    pub fn x509(&self) -> &CertificateList {
        &self.list
    }

    /// Issuer name.
    pub fn issuer(&self) -> &Name {
        &self.list.tbs_cert_list.issuer
    }

    /// Issuer as text.
    pub fn issuer_text(&self) -> String {
        names::format_name(self.issuer())
    }

    /// When this CRL was issued.
    pub fn this_update(&self) -> SystemTime {
        self.list.tbs_cert_list.this_update.to_system_time()
    }

    /// When the next CRL is due, if stated.
    pub fn next_update(&self) -> Option<SystemTime> {
        self.list
            .tbs_cert_list
            .next_update
            .map(|t| t.to_system_time())
    }

    /// All entries, in order.
    pub fn entries(&self) -> Vec<RevokedEntry> {
        self.list
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .map(|rc| RevokedEntry {
                serial: rc.serial_number.as_bytes().to_vec(),
                date: rc.revocation_date.to_system_time(),
                reason: rc
                    .crl_entry_extensions
                    .iter()
                    .flatten()
                    .find(|e| e.extn_id == CRL_REASON)
                    .and_then(|e| reason_code(e.extn_value.as_bytes())),
            })
            .collect()
    }

    /// The entry for a serial number (big-endian; leading zeros are ignored).
    pub fn find(&self, serial: &[u8]) -> Option<RevokedEntry> {
        let serial = strip_leading_zeros(serial);
        self.entries()
            .into_iter()
            .find(|e| strip_leading_zeros(&e.serial) == serial)
    }

    /// Checks that `issuer` issued this CRL: same name, `cRLSign` allowed (when key usage is
    /// present), and the signature verifies with its key.
    pub fn verify_issued_by(&self, issuer: &JpkiCertificate) -> Result<(), CrlError> {
        if self.issuer() != issuer.subject() {
            return Err(CrlError::IssuerMismatch {
                crl_issuer: self.issuer_text(),
                expected: issuer.subject_text(),
            });
        }
        if issuer.key_usage().is_some_and(|ku| !ku.crl_sign) {
            return Err(CrlError::IssuerCannotSignCrls);
        }
        sigalg::verify_signed_der(&self.der, issuer.subject_public_key_info())
            .map_err(CrlError::Signature)
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// `CRLReason ::= ENUMERATED`, DER `0A 01 nn`. Unknown codes are kept.
fn reason_code(der: &[u8]) -> Option<RevocationReason> {
    match der {
        [0x0A, 0x01, code] => Some(RevocationReason::from_code(*code)),
        _ => None,
    }
}
