//! The consent document (protocol §6): what the person agrees to for registration and for use,
//! in Japanese with an English rendering, with a version and a hash.
//!
//! The source texts live in this crate at `consent/<doc_id>/<version>/` and are
//! compiled into this crate, so the client and the reference service always agree on the
//! bytes and therefore on the hash. **A service embeds the document through [`current`]**
//! (never by reading the files itself) and serves [`ConsentDocument::reference`] in every
//! challenge.
//!
//! The hash is `SHA-256(JCS(document))` over the JSON form of [`ConsentDocument`].

use serde::{Deserialize, Serialize};

use crate::jcs::{self, JcsError};
use crate::messages::{ConsentRef, Operation};
use crate::wire::{Sha256Digest, V1};

/// The id of the insurance-use consent document.
pub const DOC_ID: &str = "mynacard-insurance-use";
/// The version of the document [`current`] returns.
pub const CURRENT_VERSION: &str = "1.0";

/// A text in Japanese with its English rendering. The Japanese text is authoritative.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Localized {
    /// Japanese.
    pub ja: String,
    /// English.
    pub en: String,
}

impl Localized {
    /// The text for a BCP 47 locale: English for `en*`, Japanese otherwise.
    pub fn for_locale(&self, locale: &str) -> &str {
        if locale
            .get(..2)
            .is_some_and(|p| p.eq_ignore_ascii_case("en"))
        {
            &self.en
        } else {
            &self.ja
        }
    }
}

/// One part of the consent document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsentSection {
    /// Section id (`registration`, `use`).
    pub id: String,
    /// The operations whose sessions this section is shown for.
    pub applies_to: Vec<Operation>,
    /// The articles of the Mynaportal terms of use whose data flow this section follows.
    pub terms_articles: Vec<String>,
    /// Heading.
    pub title: Localized,
    /// Body text (Markdown, LF line endings).
    pub text: Localized,
}

/// The consent document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsentDocument {
    /// Protocol version.
    pub v: V1,
    /// Document id.
    pub doc_id: String,
    /// Document version.
    pub version: String,
    /// Title.
    pub title: Localized,
    /// Sections, in display order.
    pub sections: Vec<ConsentSection>,
}

impl ConsentDocument {
    /// The canonical bytes that are hashed.
    ///
    /// # Errors
    /// [`JcsError`] (not for documents made of strings, as all are).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, JcsError> {
        jcs::to_vec(self)
    }

    /// `SHA-256(JCS(document))`.
    ///
    /// # Errors
    /// As [`ConsentDocument::canonical_bytes`].
    pub fn sha256(&self) -> Result<Sha256Digest, JcsError> {
        Ok(Sha256Digest::of(&self.canonical_bytes()?))
    }

    /// Id, version and hash.
    ///
    /// # Errors
    /// As [`ConsentDocument::canonical_bytes`].
    pub fn reference(&self) -> Result<ConsentRef, JcsError> {
        Ok(ConsentRef {
            doc_id: self.doc_id.clone(),
            version: self.version.clone(),
            sha256: self.sha256()?,
        })
    }

    /// The sections shown for an operation.
    pub fn sections_for(&self, op: Operation) -> impl Iterator<Item = &ConsentSection> {
        self.sections
            .iter()
            .filter(move |s| s.applies_to.contains(&op))
    }

    /// The document as plain text for one locale and operation, for terminals that show text.
    pub fn render(&self, locale: &str, op: Operation) -> String {
        let mut out = format!(
            "{}\n({} {})\n",
            self.title.for_locale(locale),
            self.doc_id,
            self.version
        );
        for s in self.sections_for(op) {
            out.push('\n');
            out.push_str(s.title.for_locale(locale));
            out.push_str("\n\n");
            out.push_str(s.text.for_locale(locale).trim_end());
            out.push('\n');
        }
        out
    }
}

// Line endings are normalised so that a checkout with CRLF endings hashes the same.
fn text(raw: &str) -> String {
    raw.replace("\r\n", "\n")
}

/// The consent document in force (`mynacard-insurance-use` 1.0), built from the texts in
/// `consent/mynacard-insurance-use/1.0/` (in this crate).
pub fn current() -> ConsentDocument {
    ConsentDocument {
        v: V1,
        doc_id: DOC_ID.to_owned(),
        version: CURRENT_VERSION.to_owned(),
        title: Localized {
            ja: "マイナンバーカードの健康保険証利用に関する同意事項".to_owned(),
            en: "Consent to using the My Number Card as a health-insurance card".to_owned(),
        },
        sections: vec![
            ConsentSection {
                id: "registration".to_owned(),
                applies_to: vec![Operation::RegisterInsuranceUse],
                terms_articles: vec!["5-2".to_owned(), "5-3".to_owned()],
                title: Localized {
                    ja: "健康保険証利用の登録".to_owned(),
                    en: "Registration for health-insurance use".to_owned(),
                },
                text: Localized {
                    ja: text(include_str!(
                        "../consent/mynacard-insurance-use/1.0/registration.ja.md"
                    )),
                    en: text(include_str!(
                        "../consent/mynacard-insurance-use/1.0/registration.en.md"
                    )),
                },
            },
            ConsentSection {
                id: "use".to_owned(),
                applies_to: vec![Operation::RegisterInsuranceUse, Operation::CheckEligibility],
                terms_articles: vec!["5-4".to_owned(), "5-5".to_owned()],
                title: Localized {
                    ja: "医療機関・薬局での利用".to_owned(),
                    en: "Use at clinics and pharmacies".to_owned(),
                },
                text: Localized {
                    ja: text(include_str!(
                        "../consent/mynacard-insurance-use/1.0/use.ja.md"
                    )),
                    en: text(include_str!(
                        "../consent/mynacard-insurance-use/1.0/use.en.md"
                    )),
                },
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_document_hashes_its_canonical_form() {
        let doc = current();
        let bytes = doc.canonical_bytes().unwrap();
        // Non-ASCII text is carried as UTF-8, not escaped.
        assert!(std::str::from_utf8(&bytes).unwrap().contains("健康保険証"));
        assert_eq!(doc.sha256().unwrap(), Sha256Digest::of(&bytes));
        let back: ConsentDocument = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, doc);
        assert!(!bytes.contains(&b'\r'));
    }

    #[test]
    fn any_change_changes_the_hash() {
        let doc = current();
        let mut changed = doc.clone();
        changed.sections[1].text.ja.push('。');
        assert_ne!(doc.sha256().unwrap(), changed.sha256().unwrap());
    }

    #[test]
    fn sections_follow_the_operation() {
        let doc = current();
        let reg: Vec<_> = doc
            .sections_for(Operation::RegisterInsuranceUse)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(reg, ["registration", "use"]);
        let elig: Vec<_> = doc
            .sections_for(Operation::CheckEligibility)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(elig, ["use"]);
        assert!(
            doc.render("en", Operation::CheckEligibility)
                .contains("three months")
        );
        assert!(
            doc.render("ja", Operation::CheckEligibility)
                .contains("3か月")
        );
    }
}
