//! The elementary files of one application and who may use them.

use crate::state::SecretId;

/// Which private key an EF holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySlot {
    /// JPKI `0017`: authentication key, after the auth PIN.
    JpkiAuth,
    /// JPKI `001A`: signing key, after the signing password.
    JpkiSign,
    /// Common AP `0019`: internal-authentication key, no PIN.
    CommonInternalAuth,
}

impl KeySlot {
    /// The secret that must be verified before the key signs, if any.
    pub(crate) const fn gate(self) -> Option<SecretId> {
        match self {
            KeySlot::JpkiAuth => Some(SecretId::JpkiAuthPin),
            KeySlot::JpkiSign => Some(SecretId::JpkiSignPassword),
            KeySlot::CommonInternalAuth => None,
        }
    }
}

/// What an EF holds.
pub(crate) enum Body {
    /// A transparent file read with READ BINARY.
    Binary(Vec<u8>),
    /// A linear record file read with READ RECORD (record 1 first).
    Records(Vec<Vec<u8>>),
    /// A private key: selectable, usable for signing, never readable.
    Key(KeySlot),
    /// A PIN or collation key: selectable, usable with VERIFY, never readable.
    Secret(SecretId),
}

/// One EF.
pub(crate) struct Ef {
    /// File identifier; its low five bits are its short EF identifier.
    pub(crate) fid: u16,
    /// Secrets of which any one, verified, opens the file for reading; empty = free. Owned,
    /// because a recorded image names them at run time.
    pub(crate) read_after: Vec<SecretId>,
    /// Contents.
    pub(crate) body: Body,
}

impl Ef {
    pub(crate) fn free(fid: u16, body: Body) -> Ef {
        Ef {
            fid,
            read_after: Vec::new(),
            body,
        }
    }

    pub(crate) fn gated(fid: u16, read_after: &[SecretId], body: Body) -> Ef {
        Ef {
            fid,
            read_after: read_after.to_vec(),
            body,
        }
    }

    /// The short EF identifier (`fid` 0001–001E).
    pub(crate) fn sfi(&self) -> Option<u8> {
        (1..=0x1E).contains(&self.fid).then_some(self.fid as u8)
    }
}

/// The EFs of one application.
pub(crate) struct Files(pub(crate) Vec<Ef>);

impl Files {
    pub(crate) fn by_fid(&self, fid: u16) -> Option<&Ef> {
        self.0.iter().find(|ef| ef.fid == fid)
    }

    pub(crate) fn by_sfi(&self, sfi: u8) -> Option<&Ef> {
        self.0.iter().find(|ef| ef.sfi() == Some(sfi))
    }
}
