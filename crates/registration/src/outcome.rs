//! How a flow ended, typed for a terminal to show (protocol §15).

use crate::errors::{ErrorBody, ErrorCode, RevocationReason};
use crate::messages::{EligibilityResult, RegistrationPending};

/// How a registration, eligibility check or deregistration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A new registration.
    Registered {
        /// The service's registration id.
        registration_id: String,
        /// The insurer's name.
        insurer_name: Option<String>,
    },
    /// The card was already registered; nothing changed.
    AlreadyRegistered {
        /// The service's registration id.
        registration_id: String,
        /// The insurer's name.
        insurer_name: Option<String>,
    },
    /// An earlier certificate of the person was registered; the registration now follows this
    /// card (after a reissue or renewal).
    RelinkedAfterReissue {
        /// The service's registration id (unchanged).
        registration_id: String,
        /// The insurer's name.
        insurer_name: Option<String>,
    },
    /// Eligible at the point of use.
    Eligible(Box<EligibilityResult>),
    /// The registration was withdrawn.
    Deregistered {
        /// The withdrawn registration.
        registration_id: String,
    },
    /// The service accepted the registration but an upstream has not answered yet; it finishes
    /// in the background (protocol §16). The terminal chose not to wait, or stopped waiting:
    /// poll later with [`crate::Machine::poll_registration`]. Nothing more is needed from the
    /// person or the card.
    Pending(Box<RegistrationPending>),
    /// The service could not finish a pending registration before its deadline
    /// (`E_UPSTREAM_TIMEOUT`); nothing was registered. Try again later in a new session.
    UpstreamTimedOut,
    /// The card is not registered (nor an earlier certificate of the person).
    NotRegistered,
    /// The certificate expired and the grace period is over: register again with a new one.
    RegistrationLapsed,
    /// The insurer has not registered the person yet.
    NoInsuranceRecord,
    /// The identity upstream does not know the certificate.
    PersonNotFound,
    /// More than one insurance record: staff must resolve it.
    MultipleInsuranceRecords,
    /// First registration is blocked for this person.
    RegistrationRestricted,
    /// The auth certificate has expired.
    CertificateExpired,
    /// The auth certificate is revoked.
    CertificateRevoked {
        /// The reason, when the service gave one.
        reason: Option<RevocationReason>,
    },
    /// The certificate does not chain to a root the service trusts (e.g. a test card).
    CertificateUntrusted,
    /// The card's certificate is not an auth certificate.
    CertificateWrongType,
    /// The PIN was wrong.
    WrongPin {
        /// Tries left.
        retries_left: u8,
    },
    /// The PIN is blocked: unlock at the municipal office (or a convenience-store kiosk).
    PinBlocked,
    /// One try left and the terminal does not allow spending it.
    LastAttemptRefused,
    /// The card has no auth PIN (a face-authentication card): use a face-recognition terminal.
    NoAuthPin,
    /// 照合番号B was wrong (most often a misread card face).
    CollationNumberWrong {
        /// Tries left.
        retries_left: u8,
    },
    /// 照合番号B is blocked.
    CollationNumberBlocked,
    /// One try of 照合番号B left and the terminal does not allow spending it.
    CollationLastAttemptRefused,
    /// The face did not match the card photo.
    FaceNotMatched,
    /// The person declined the consent.
    ConsentDeclined,
    /// The person or the terminal cancelled.
    Cancelled,
    /// The card was removed or the link was lost, or the answer to a VERIFY was one that
    /// neither accepts the PIN nor refuses it unchecked (a damaged answer, `6F00`).
    CardRemoved {
        /// The link or the answer was lost during VERIFY: the card may have counted the attempt.
        attempt_may_have_been_counted: bool,
    },
    /// The card answered something this flow cannot continue from.
    CardError {
        /// What was being done.
        what: &'static str,
        /// The status word, if the card answered.
        sw: Option<u16>,
    },
    /// The service asks to wait (rate limit or an upstream is unavailable).
    ServiceBusy {
        /// Seconds to wait, when given.
        retry_after: Option<u32>,
    },
    /// The service is in maintenance.
    Maintenance {
        /// Seconds to wait, when given.
        retry_after: Option<u32>,
    },
    /// The service could not be reached.
    ServiceUnreachable {
        /// A proof was sent and no answer came: the person may already be registered; running
        /// the flow again is safe.
        proof_may_have_arrived: bool,
    },
    /// The challenge expired before the proof arrived; start again.
    SessionExpired,
    /// This terminal may not use the method (face registration from a terminal the service
    /// does not know, or without accreditation).
    TerminalNotAccepted,
    /// The consent document changed while the flow ran; start again to show the new one.
    ConsentChanged,
    /// The service refused with another code.
    Rejected {
        /// The code.
        code: ErrorCode,
        /// The service's message.
        message: String,
    },
    /// The service answered something that is not this protocol.
    ProtocolError {
        /// What was wrong.
        what: String,
    },
}

/// Which [`Outcome`] a flow ended with, without its data: one match for every terminal, CLI
/// and binding that shows or logs outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// [`Outcome::Registered`].
    Registered,
    /// [`Outcome::AlreadyRegistered`].
    AlreadyRegistered,
    /// [`Outcome::RelinkedAfterReissue`].
    RelinkedAfterReissue,
    /// [`Outcome::Eligible`].
    Eligible,
    /// [`Outcome::Deregistered`].
    Deregistered,
    /// [`Outcome::Pending`].
    Pending,
    /// [`Outcome::UpstreamTimedOut`].
    UpstreamTimedOut,
    /// [`Outcome::NotRegistered`].
    NotRegistered,
    /// [`Outcome::RegistrationLapsed`].
    RegistrationLapsed,
    /// [`Outcome::NoInsuranceRecord`].
    NoInsuranceRecord,
    /// [`Outcome::PersonNotFound`].
    PersonNotFound,
    /// [`Outcome::MultipleInsuranceRecords`].
    MultipleInsuranceRecords,
    /// [`Outcome::RegistrationRestricted`].
    RegistrationRestricted,
    /// [`Outcome::CertificateExpired`].
    CertificateExpired,
    /// [`Outcome::CertificateRevoked`].
    CertificateRevoked,
    /// [`Outcome::CertificateUntrusted`].
    CertificateUntrusted,
    /// [`Outcome::CertificateWrongType`].
    CertificateWrongType,
    /// [`Outcome::WrongPin`].
    WrongPin,
    /// [`Outcome::PinBlocked`].
    PinBlocked,
    /// [`Outcome::LastAttemptRefused`].
    LastAttemptRefused,
    /// [`Outcome::NoAuthPin`].
    NoAuthPin,
    /// [`Outcome::CollationNumberWrong`].
    CollationNumberWrong,
    /// [`Outcome::CollationNumberBlocked`].
    CollationNumberBlocked,
    /// [`Outcome::CollationLastAttemptRefused`].
    CollationLastAttemptRefused,
    /// [`Outcome::FaceNotMatched`].
    FaceNotMatched,
    /// [`Outcome::ConsentDeclined`].
    ConsentDeclined,
    /// [`Outcome::Cancelled`].
    Cancelled,
    /// [`Outcome::CardRemoved`].
    CardRemoved,
    /// [`Outcome::CardError`].
    CardError,
    /// [`Outcome::ServiceBusy`].
    ServiceBusy,
    /// [`Outcome::Maintenance`].
    Maintenance,
    /// [`Outcome::ServiceUnreachable`].
    ServiceUnreachable,
    /// [`Outcome::SessionExpired`].
    SessionExpired,
    /// [`Outcome::TerminalNotAccepted`].
    TerminalNotAccepted,
    /// [`Outcome::ConsentChanged`].
    ConsentChanged,
    /// [`Outcome::Rejected`].
    Rejected,
    /// [`Outcome::ProtocolError`].
    ProtocolError,
}

impl OutcomeKind {
    /// Every kind, in declaration order.
    pub const ALL: [OutcomeKind; 37] = [
        OutcomeKind::Registered,
        OutcomeKind::AlreadyRegistered,
        OutcomeKind::RelinkedAfterReissue,
        OutcomeKind::Eligible,
        OutcomeKind::Deregistered,
        OutcomeKind::Pending,
        OutcomeKind::UpstreamTimedOut,
        OutcomeKind::NotRegistered,
        OutcomeKind::RegistrationLapsed,
        OutcomeKind::NoInsuranceRecord,
        OutcomeKind::PersonNotFound,
        OutcomeKind::MultipleInsuranceRecords,
        OutcomeKind::RegistrationRestricted,
        OutcomeKind::CertificateExpired,
        OutcomeKind::CertificateRevoked,
        OutcomeKind::CertificateUntrusted,
        OutcomeKind::CertificateWrongType,
        OutcomeKind::WrongPin,
        OutcomeKind::PinBlocked,
        OutcomeKind::LastAttemptRefused,
        OutcomeKind::NoAuthPin,
        OutcomeKind::CollationNumberWrong,
        OutcomeKind::CollationNumberBlocked,
        OutcomeKind::CollationLastAttemptRefused,
        OutcomeKind::FaceNotMatched,
        OutcomeKind::ConsentDeclined,
        OutcomeKind::Cancelled,
        OutcomeKind::CardRemoved,
        OutcomeKind::CardError,
        OutcomeKind::ServiceBusy,
        OutcomeKind::Maintenance,
        OutcomeKind::ServiceUnreachable,
        OutcomeKind::SessionExpired,
        OutcomeKind::TerminalNotAccepted,
        OutcomeKind::ConsentChanged,
        OutcomeKind::Rejected,
        OutcomeKind::ProtocolError,
    ];

    /// The stable snake-case name (`wrong_pin`, `registered`, …) used in JSON and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Registered => "registered",
            OutcomeKind::AlreadyRegistered => "already_registered",
            OutcomeKind::RelinkedAfterReissue => "relinked_after_reissue",
            OutcomeKind::Eligible => "eligible",
            OutcomeKind::Deregistered => "deregistered",
            OutcomeKind::Pending => "pending",
            OutcomeKind::UpstreamTimedOut => "upstream_timed_out",
            OutcomeKind::NotRegistered => "not_registered",
            OutcomeKind::RegistrationLapsed => "registration_lapsed",
            OutcomeKind::NoInsuranceRecord => "no_insurance_record",
            OutcomeKind::PersonNotFound => "person_not_found",
            OutcomeKind::MultipleInsuranceRecords => "multiple_insurance_records",
            OutcomeKind::RegistrationRestricted => "registration_restricted",
            OutcomeKind::CertificateExpired => "certificate_expired",
            OutcomeKind::CertificateRevoked => "certificate_revoked",
            OutcomeKind::CertificateUntrusted => "certificate_untrusted",
            OutcomeKind::CertificateWrongType => "certificate_wrong_type",
            OutcomeKind::WrongPin => "wrong_pin",
            OutcomeKind::PinBlocked => "pin_blocked",
            OutcomeKind::LastAttemptRefused => "last_attempt_refused",
            OutcomeKind::NoAuthPin => "no_auth_pin",
            OutcomeKind::CollationNumberWrong => "collation_number_wrong",
            OutcomeKind::CollationNumberBlocked => "collation_number_blocked",
            OutcomeKind::CollationLastAttemptRefused => "collation_last_attempt_refused",
            OutcomeKind::FaceNotMatched => "face_not_matched",
            OutcomeKind::ConsentDeclined => "consent_declined",
            OutcomeKind::Cancelled => "cancelled",
            OutcomeKind::CardRemoved => "card_removed",
            OutcomeKind::CardError => "card_error",
            OutcomeKind::ServiceBusy => "service_busy",
            OutcomeKind::Maintenance => "maintenance",
            OutcomeKind::ServiceUnreachable => "service_unreachable",
            OutcomeKind::SessionExpired => "session_expired",
            OutcomeKind::TerminalNotAccepted => "terminal_not_accepted",
            OutcomeKind::ConsentChanged => "consent_changed",
            OutcomeKind::Rejected => "rejected",
            OutcomeKind::ProtocolError => "protocol_error",
        }
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    /// Which outcome this is.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Registered { .. } => OutcomeKind::Registered,
            Outcome::AlreadyRegistered { .. } => OutcomeKind::AlreadyRegistered,
            Outcome::RelinkedAfterReissue { .. } => OutcomeKind::RelinkedAfterReissue,
            Outcome::Eligible(_) => OutcomeKind::Eligible,
            Outcome::Deregistered { .. } => OutcomeKind::Deregistered,
            Outcome::Pending(_) => OutcomeKind::Pending,
            Outcome::UpstreamTimedOut => OutcomeKind::UpstreamTimedOut,
            Outcome::NotRegistered => OutcomeKind::NotRegistered,
            Outcome::RegistrationLapsed => OutcomeKind::RegistrationLapsed,
            Outcome::NoInsuranceRecord => OutcomeKind::NoInsuranceRecord,
            Outcome::PersonNotFound => OutcomeKind::PersonNotFound,
            Outcome::MultipleInsuranceRecords => OutcomeKind::MultipleInsuranceRecords,
            Outcome::RegistrationRestricted => OutcomeKind::RegistrationRestricted,
            Outcome::CertificateExpired => OutcomeKind::CertificateExpired,
            Outcome::CertificateRevoked { .. } => OutcomeKind::CertificateRevoked,
            Outcome::CertificateUntrusted => OutcomeKind::CertificateUntrusted,
            Outcome::CertificateWrongType => OutcomeKind::CertificateWrongType,
            Outcome::WrongPin { .. } => OutcomeKind::WrongPin,
            Outcome::PinBlocked => OutcomeKind::PinBlocked,
            Outcome::LastAttemptRefused => OutcomeKind::LastAttemptRefused,
            Outcome::NoAuthPin => OutcomeKind::NoAuthPin,
            Outcome::CollationNumberWrong { .. } => OutcomeKind::CollationNumberWrong,
            Outcome::CollationNumberBlocked => OutcomeKind::CollationNumberBlocked,
            Outcome::CollationLastAttemptRefused => OutcomeKind::CollationLastAttemptRefused,
            Outcome::FaceNotMatched => OutcomeKind::FaceNotMatched,
            Outcome::ConsentDeclined => OutcomeKind::ConsentDeclined,
            Outcome::Cancelled => OutcomeKind::Cancelled,
            Outcome::CardRemoved { .. } => OutcomeKind::CardRemoved,
            Outcome::CardError { .. } => OutcomeKind::CardError,
            Outcome::ServiceBusy { .. } => OutcomeKind::ServiceBusy,
            Outcome::Maintenance { .. } => OutcomeKind::Maintenance,
            Outcome::ServiceUnreachable { .. } => OutcomeKind::ServiceUnreachable,
            Outcome::SessionExpired => OutcomeKind::SessionExpired,
            Outcome::TerminalNotAccepted => OutcomeKind::TerminalNotAccepted,
            Outcome::ConsentChanged => OutcomeKind::ConsentChanged,
            Outcome::Rejected { .. } => OutcomeKind::Rejected,
            Outcome::ProtocolError { .. } => OutcomeKind::ProtocolError,
        }
    }

    /// Whether the flow reached what it was for.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Outcome::Registered { .. }
                | Outcome::AlreadyRegistered { .. }
                | Outcome::RelinkedAfterReissue { .. }
                | Outcome::Eligible(_)
                | Outcome::Deregistered { .. }
        )
    }

    /// The outcome for a service error body.
    pub fn from_error(body: ErrorBody, header_retry_after: Option<u32>) -> Outcome {
        let retry_after = header_retry_after.or(body.retry_after);
        match body.code {
            ErrorCode::RateLimited | ErrorCode::UpstreamJlis | ErrorCode::UpstreamSsk => {
                Outcome::ServiceBusy { retry_after }
            }
            ErrorCode::Maintenance => Outcome::Maintenance { retry_after },
            ErrorCode::UpstreamTimeout => Outcome::UpstreamTimedOut,
            ErrorCode::CertExpired => Outcome::CertificateExpired,
            ErrorCode::CertRevoked => Outcome::CertificateRevoked {
                reason: body.reason,
            },
            ErrorCode::CertUntrusted => Outcome::CertificateUntrusted,
            ErrorCode::CertWrongType => Outcome::CertificateWrongType,
            ErrorCode::NoInsuranceRecord => Outcome::NoInsuranceRecord,
            ErrorCode::PersonNotFound => Outcome::PersonNotFound,
            ErrorCode::MultipleMatch => Outcome::MultipleInsuranceRecords,
            ErrorCode::RegistrationRestricted => Outcome::RegistrationRestricted,
            ErrorCode::NotRegistered => Outcome::NotRegistered,
            ErrorCode::RegLapsed => Outcome::RegistrationLapsed,
            ErrorCode::SessionExpired => Outcome::SessionExpired,
            ErrorCode::TerminalUnknown | ErrorCode::MethodNotAllowed => {
                Outcome::TerminalNotAccepted
            }
            ErrorCode::ConsentMismatch => Outcome::ConsentChanged,
            code => Outcome::Rejected {
                code,
                message: body.message,
            },
        }
    }

    /// A short text for the person, in Japanese (`ja`) or English (any other locale).
    pub fn message(&self, locale: &str) -> String {
        let ja = !locale
            .get(..2)
            .is_some_and(|p| p.eq_ignore_ascii_case("en"));
        let pick = |j: &str, e: &str| if ja { j.to_owned() } else { e.to_owned() };
        let insurer = |n: &Option<String>| n.clone().unwrap_or_default();
        match self {
            Outcome::Registered { insurer_name, .. } => pick(
                &format!("健康保険証として登録しました。{}", insurer(insurer_name)),
                &format!(
                    "Registered as your health-insurance card. {}",
                    insurer(insurer_name)
                ),
            ),
            Outcome::AlreadyRegistered { .. } => pick(
                "このカードはすでに登録されています。",
                "This card is already registered.",
            ),
            Outcome::RelinkedAfterReissue { .. } => pick(
                "以前のカードの登録を、このカードに引き継ぎました。",
                "Your earlier card's registration now follows this card.",
            ),
            Outcome::Eligible(r) => {
                let grace = if r.grace {
                    pick(
                        "（電子証明書の期限が切れています。更新してください）",
                        " (the certificate has expired: please renew it)",
                    )
                } else {
                    String::new()
                };
                pick(
                    &format!("資格を確認しました：{}{}", r.insurance.insurer_name, grace),
                    &format!(
                        "Eligibility confirmed: {}{}",
                        r.insurance.insurer_name, grace
                    ),
                )
            }
            Outcome::Deregistered { .. } => pick("登録を解除しました。", "Registration withdrawn."),
            Outcome::Pending(p) => pick(
                &format!(
                    "登録を受け付けました。確認に時間がかかっています（{}まで）。カードはもう必要ありません。",
                    p.deadline
                ),
                &format!(
                    "Registration accepted; the check takes longer than usual (until {}). The card \
                     is no longer needed.",
                    p.deadline
                ),
            ),
            Outcome::UpstreamTimedOut => pick(
                "確認が期限内に終わらず、登録されませんでした。時間をおいて最初からやり直してください。",
                "The check did not finish in time and nothing was registered. Please start again later.",
            ),
            Outcome::NotRegistered => pick(
                "このカードは健康保険証として登録されていません。",
                "This card is not registered as a health-insurance card.",
            ),
            Outcome::RegistrationLapsed => pick(
                "電子証明書の期限切れにより登録が失効しました。新しい電子証明書で登録してください。",
                "The registration lapsed with the expired certificate. Register again with a new one.",
            ),
            Outcome::NoInsuranceRecord => pick(
                "保険者での資格の登録がまだ済んでいません。時間をおいてお試しください。",
                "Your insurer has not registered you yet. Please try again later.",
            ),
            Outcome::PersonNotFound => pick(
                "電子証明書から本人を確認できませんでした。時間をおいてお試しください。",
                "You could not be identified from the certificate. Please try again later.",
            ),
            Outcome::MultipleInsuranceRecords => pick(
                "複数の保険資格が見つかりました。窓口にお問い合わせください。",
                "Several insurance records were found. Please ask the staff.",
            ),
            Outcome::RegistrationRestricted => pick(
                "この方法では登録できません。保険者にお問い合わせください。",
                "Registration is not possible this way. Please contact your insurer.",
            ),
            Outcome::CertificateExpired => pick(
                "電子証明書の有効期限が切れています。市区町村の窓口で更新してください。",
                "The card's certificate has expired. Renew it at your municipal office.",
            ),
            Outcome::CertificateRevoked { reason } => {
                let r = reason.map(|r| r.as_str()).unwrap_or("unspecified");
                pick(
                    &format!("電子証明書は失効しています（{r}）。"),
                    &format!("The card's certificate is revoked ({r})."),
                )
            }
            Outcome::CertificateUntrusted => pick(
                "このカードの電子証明書は受け付けられません。",
                "This card's certificate is not accepted.",
            ),
            Outcome::CertificateWrongType => pick(
                "利用者証明用電子証明書ではありません。",
                "This is not a user-authentication certificate.",
            ),
            Outcome::WrongPin { retries_left } => pick(
                &format!("暗証番号が違います。残り{retries_left}回です。"),
                &format!("Wrong PIN. {retries_left} tries left."),
            ),
            Outcome::PinBlocked => pick(
                "暗証番号がロックされています。市区町村の窓口で解除してください。",
                "The PIN is blocked. Unlock it at your municipal office.",
            ),
            Outcome::LastAttemptRefused => pick(
                "暗証番号の残り回数が1回のため、この端末では入力できません。",
                "Only one PIN try is left; this terminal does not use it.",
            ),
            Outcome::NoAuthPin => pick(
                "このカードには暗証番号がありません。顔認証付きの端末をご利用ください。",
                "This card has no PIN. Please use a face-recognition terminal.",
            ),
            Outcome::CollationNumberWrong { retries_left } => pick(
                &format!("カード券面の読み取りに失敗しました（残り{retries_left}回）。"),
                &format!("The card face was not read correctly ({retries_left} tries left)."),
            ),
            Outcome::CollationNumberBlocked | Outcome::CollationLastAttemptRefused => pick(
                "券面の照合ができません。市区町村の窓口にお問い合わせください。",
                "The card face cannot be checked. Please ask your municipal office.",
            ),
            Outcome::FaceNotMatched => pick(
                "顔の照合ができませんでした。",
                "Your face did not match the card photo.",
            ),
            Outcome::ConsentDeclined => pick(
                "同意されなかったため、手続きを終了しました。",
                "You did not agree, so nothing was done.",
            ),
            Outcome::Cancelled => pick("中止しました。", "Cancelled."),
            Outcome::CardRemoved {
                attempt_may_have_been_counted,
            } => {
                if *attempt_may_have_been_counted {
                    pick(
                        "カードが離れました。暗証番号の入力が1回分数えられた可能性があります。",
                        "The card was removed. The PIN try may have been counted.",
                    )
                } else {
                    pick("カードが離れました。", "The card was removed.")
                }
            }
            Outcome::CardError { what, sw } => {
                let sw = sw.map(|s| format!(" {s:04X}")).unwrap_or_default();
                pick(
                    &format!("カードを読み取れませんでした（{what}{sw}）。"),
                    &format!("The card could not be read ({what}{sw})."),
                )
            }
            Outcome::ServiceBusy { retry_after } => {
                let s = retry_after.unwrap_or(30);
                pick(
                    &format!("混み合っています。{s}秒後にお試しください。"),
                    &format!("The service is busy. Try again in {s} s."),
                )
            }
            Outcome::Maintenance { retry_after } => {
                let s = retry_after.unwrap_or(600);
                pick(
                    &format!("メンテナンス中です。{s}秒後にお試しください。"),
                    &format!("The service is in maintenance. Try again in {s} s."),
                )
            }
            Outcome::ServiceUnreachable {
                proof_may_have_arrived: false,
            } => pick(
                "サービスに接続できません。",
                "The service cannot be reached.",
            ),
            // The service may have done it: saying "cannot be reached" would invite a person
            // to think nothing happened.
            Outcome::ServiceUnreachable {
                proof_may_have_arrived: true,
            } => pick(
                "送信後にサービスの応答が途絶えました。処理されたかどうかは不明です。",
                "The service stopped answering after the request was sent: whether it was \
                 done is unknown.",
            ),
            Outcome::SessionExpired => pick(
                "時間切れです。最初からやり直してください。",
                "The session expired. Please start again.",
            ),
            Outcome::TerminalNotAccepted => pick(
                "この端末ではこの方法を使えません。",
                "This terminal may not use this method.",
            ),
            Outcome::ConsentChanged => pick(
                "同意事項が更新されました。最初からやり直してください。",
                "The consent text changed. Please start again.",
            ),
            Outcome::Rejected { code, .. } => pick(
                &format!("受け付けられませんでした（{code}）。"),
                &format!("The service refused ({code})."),
            ),
            Outcome::ProtocolError { .. } => pick(
                "サービスの応答が不正です。",
                "The service answered something unexpected.",
            ),
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn kind_names_are_distinct_snake_case() {
        let mut names: Vec<&str> = OutcomeKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), OutcomeKind::ALL.len());
        assert_eq!(Outcome::PinBlocked.kind().as_str(), "pin_blocked");
        assert_eq!(
            Outcome::CardError {
                what: "x",
                sw: None
            }
            .kind(),
            OutcomeKind::CardError
        );
    }
}
