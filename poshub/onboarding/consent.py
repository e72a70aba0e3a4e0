"""The privacy notice applicants are shown and the consents they give (PIPL).

The notice is a versioned legal text, fixed per version in both languages (not a
translatable UI string: what an applicant agreed to must not change when a translation
is edited). A new version gets a new constant; consents record the version they were
given under, and submission needs consents under the current one.

Two consents, asked for separately (PIPL arts. 14 and 23): agreement to the notice
(``privacy_notice``), and consent to send identity and bank data to the verification
provider (``verification_provider``). Pure: no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from poshub.onboarding.models import ApplicationConsent, ConsentAction, ConsentKind

PRIVACY_NOTICE_VERSION = "2026-12"
"""The current notice; change it (and the texts) together with docs/privacy.md."""

PRIVACY_NOTICE: dict[str, dict[str, str]] = {
    "2026-12": {
        "zh_CN": (
            "个人信息处理告知（版本 2026-12）\n"
            "处理者：本收单机构（PosHub 平台运营方）。\n"
            "我们处理的个人信息：姓名、居民身份证号码及有效期、手机号码、经营地址、"
            "结算账户户名与账号、证件及经营场所照片等申请材料。身份证号码和账号加密保存。\n"
            "目的与依据：按照《银行卡收单业务管理办法》审核特约商户资质、签订和履行收单协议、"
            "结算资金、防范欺诈和洗钱风险。\n"
            "向第三方提供：经您单独同意，我们将姓名、身份证号码、结算账号和预留手机号提供给"
            "实名认证及银行卡四要素核验服务商，仅用于核验身份和账户。未经同意不提供；"
            "不同意时无法完成核验，申请不能提交审核。\n"
            "保存期限：申请未获批准的，按内部规定保存后删除；成为特约商户的，保存至收单关系"
            "终止后五年，期满后删除或匿名化，法律另有规定的除外。\n"
            "您的权利：查阅、复制、更正、删除个人信息，在审核决定作出前撤回同意"
            "（撤回不影响此前已进行的处理）。联系方式见网站客服热线。"
        ),
        "en": (
            "Notice on the processing of personal information (version 2026-12)\n"
            "Controller: this acquirer (the operator of the PosHub platform).\n"
            "What we process: name, resident ID number and its validity, mobile number, "
            "business address, settlement account holder and number, and the documents and "
            "photos you upload. ID and account numbers are stored encrypted.\n"
            "Why: to vet you as a merchant under the PBOC Measures on bank card acquiring, to "
            "conclude and perform the acquiring contract, to settle funds, and to prevent fraud "
            "and money laundering.\n"
            "Sharing: with your separate consent we send your name, resident ID number, "
            "settlement account number and reserved mobile number to a real-name and bank-card "
            "four-element verification provider, only to verify your identity and account. "
            "Without that consent nothing is sent, the checks cannot be completed and the "
            "application cannot be submitted for review.\n"
            "Retention: applications that do not become merchants are deleted under our rules; "
            "merchant records are kept until five years after the acquiring relationship ends, "
            "then deleted or anonymised unless the law requires otherwise.\n"
            "Your rights: access, copy, correct and delete your information, and withdraw your "
            "consent before the decision (withdrawal does not affect processing before it). "
            "Contact us through the hotline on this site."
        ),
    }
}


def notice_text(locale: str, version: str = PRIVACY_NOTICE_VERSION) -> str:
    texts = PRIVACY_NOTICE[version]
    return texts["zh_CN"] if locale.startswith("zh") else texts["en"]


@dataclass(frozen=True)
class ConsentState:
    kind: ConsentKind
    granted: bool
    """Granted and not withdrawn since."""
    notice_version: str | None
    at: dt.datetime | None


def current(rows: Iterable[ApplicationConsent]) -> dict[ConsentKind, ConsentState]:
    """Each kind's state from its grant and withdrawal rows (the latest one counts)."""
    state = {kind: ConsentState(kind, False, None, None) for kind in ConsentKind}
    for row in sorted(rows, key=lambda r: (r.at, r.id or 0)):
        kind = ConsentKind(row.kind)
        state[kind] = ConsentState(
            kind, row.action == ConsentAction.GRANTED, row.notice_version, row.at
        )
    return state


def has_current(
    state: dict[ConsentKind, ConsentState],
    kind: ConsentKind,
    version: str = PRIVACY_NOTICE_VERSION,
) -> bool:
    """Granted, not withdrawn, under the current notice."""
    consent = state[kind]
    return consent.granted and consent.notice_version == version
