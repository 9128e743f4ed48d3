//! The six J-LIS production roots, embedded in the binary.
//!
//! Trust anchors are compiled in rather than loaded from a path, so nothing on the file system
//! can add a root. The bytes are exactly those J-LIS publishes; `roots/README.md` lists their
//! SHA-256 and a test checks the embedded bytes against that table.

use crate::kind::Purpose;

/// One embedded J-LIS root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JlisRoot {
    /// File name as published (`authca03.cer`).
    pub file: &'static str,
    /// What the root issues.
    pub purpose: Purpose,
    /// Generation: 1 (2015–2025), 2 (2019–2029), 3 (2023–2033).
    pub generation: u8,
    /// SHA-256 of [`JlisRoot::der`], lower-case hex.
    pub sha256_hex: &'static str,
    /// The certificate, DER.
    pub der: &'static [u8],
}

impl JlisRoot {
    /// A short label: the file name without `.cer` (`signca03`).
    pub fn label(&self) -> &'static str {
        self.file.strip_suffix(".cer").unwrap_or(self.file)
    }
}

/// The six roots: three generations of the authentication CA, then of the signing CA.
pub static JLIS_ROOTS: [JlisRoot; 6] = [
    JlisRoot {
        file: "authca01.cer",
        purpose: Purpose::Authentication,
        generation: 1,
        sha256_hex: "4dcfc4ca0aaf9fb2a3081b3f0c991c320b3acc008667a341eeaec5af1d58ca7d",
        der: include_bytes!("../roots/authca01.cer"),
    },
    JlisRoot {
        file: "authca02.cer",
        purpose: Purpose::Authentication,
        generation: 2,
        sha256_hex: "0d98de47fc11b7f67126874b7028b6026a803d2638d6edfe53176953961fade6",
        der: include_bytes!("../roots/authca02.cer"),
    },
    JlisRoot {
        file: "authca03.cer",
        purpose: Purpose::Authentication,
        generation: 3,
        sha256_hex: "64114f29620c24ed2631d46476a040e7ee740d956089c00b036a6a8118c322b5",
        der: include_bytes!("../roots/authca03.cer"),
    },
    JlisRoot {
        file: "signca01.cer",
        purpose: Purpose::Signing,
        generation: 1,
        sha256_hex: "19645405a1fe14377434bd55957628ac4038557c542403a2243f21c706fc9355",
        der: include_bytes!("../roots/signca01.cer"),
    },
    JlisRoot {
        file: "signca02.cer",
        purpose: Purpose::Signing,
        generation: 2,
        sha256_hex: "79679c33e4cc9319440f1ad120a597ff1844e2ef217063adb176966fd5e6fbeb",
        der: include_bytes!("../roots/signca02.cer"),
    },
    JlisRoot {
        file: "signca03.cer",
        purpose: Purpose::Signing,
        generation: 3,
        sha256_hex: "d227f6cde11d35c5252178f106f843d24651944975413b539fa2fb68dbfa365f",
        der: include_bytes!("../roots/signca03.cer"),
    },
];
