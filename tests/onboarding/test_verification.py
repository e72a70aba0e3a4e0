from __future__ import annotations

import re

import pytest
from stdnum import luhn
from stdnum.cn import ric

from poshub.onboarding.verification import (
    ProviderUnavailable,
    SandboxVerificationProvider,
    VerificationOutcome,
    VerificationProvider,
    VerificationResult,
    build_provider,
)

# Synthetic values with correct check digits; they belong to nobody.
NAME = "张三"
ID_NUMBER = "34010419900307123" + ric.calc_check_digit("34010419900307123" + "0")
CARD = "622202100000000000" + luhn.calc_check_digit("622202100000000000")
MOBILE = "13800138000"


@pytest.fixture
def sandbox() -> SandboxVerificationProvider:
    return SandboxVerificationProvider()


def test_sandbox_satisfies_the_protocol(sandbox: SandboxVerificationProvider) -> None:
    assert isinstance(sandbox, VerificationProvider)
    assert sandbox.name == "sandbox"


def test_identity_match(sandbox: SandboxVerificationProvider) -> None:
    result = sandbox.verify_identity(NAME, ID_NUMBER)
    assert result.outcome is VerificationOutcome.MATCH
    assert result.provider == "sandbox"
    assert result.detail_code is None


def test_identity_mismatch_on_impersonation_marker(sandbox: SandboxVerificationProvider) -> None:
    result = sandbox.verify_identity("冒名张三", ID_NUMBER)
    assert result.outcome is VerificationOutcome.MISMATCH
    assert result.detail_code == "sandbox.identity_mismatch"


def test_identity_unavailable_on_timeout_marker(sandbox: SandboxVerificationProvider) -> None:
    with pytest.raises(ProviderUnavailable):
        sandbox.verify_identity("超时张三", ID_NUMBER)


def test_bank_card_match(sandbox: SandboxVerificationProvider) -> None:
    result = sandbox.verify_bank_card(NAME, ID_NUMBER, CARD, MOBILE)
    assert result.outcome is VerificationOutcome.MATCH
    assert result.detail_code is None


def test_bank_card_mismatch_on_mobile_4444(sandbox: SandboxVerificationProvider) -> None:
    result = sandbox.verify_bank_card(NAME, ID_NUMBER, CARD, "13800004444")
    assert result.outcome is VerificationOutcome.MISMATCH
    assert result.detail_code == "sandbox.bank_card_mismatch"


def test_bank_card_unavailable_on_mobile_0000(sandbox: SandboxVerificationProvider) -> None:
    with pytest.raises(ProviderUnavailable):
        sandbox.verify_bank_card(NAME, ID_NUMBER, CARD, "13812340000")


def test_markers_are_independent(sandbox: SandboxVerificationProvider) -> None:
    # Testers can fail one check and pass the other.
    assert sandbox.verify_bank_card("冒名张三", ID_NUMBER, CARD, MOBILE).outcome == "match"
    assert sandbox.verify_identity(NAME, ID_NUMBER).outcome == "match"


def test_whole_outage() -> None:
    down = SandboxVerificationProvider(unavailable=True)
    with pytest.raises(ProviderUnavailable):
        down.verify_identity(NAME, ID_NUMBER)
    with pytest.raises(ProviderUnavailable):
        down.verify_bank_card(NAME, ID_NUMBER, CARD, MOBILE)


def test_references_are_deterministic_and_distinct(sandbox: SandboxVerificationProvider) -> None:
    first = sandbox.verify_identity(NAME, ID_NUMBER)
    again = SandboxVerificationProvider().verify_identity(NAME, ID_NUMBER)
    other = sandbox.verify_identity("李四", ID_NUMBER)
    card = sandbox.verify_bank_card(NAME, ID_NUMBER, CARD, MOBILE)
    assert first.reference == again.reference
    assert len({first.reference, other.reference, card.reference}) == 3
    for result in (first, other, card):
        assert re.fullmatch(r"SBX[0-9a-f]{16}", result.reference)


def test_results_and_errors_never_carry_personal_numbers(
    sandbox: SandboxVerificationProvider,
) -> None:
    results: list[VerificationResult] = [
        sandbox.verify_identity(NAME, ID_NUMBER),
        sandbox.verify_bank_card(NAME, ID_NUMBER, CARD, "13800004444"),
    ]
    texts = [repr(result) for result in results]
    down = SandboxVerificationProvider(unavailable=True)
    with pytest.raises(ProviderUnavailable) as outage:
        sandbox.verify_bank_card(NAME, ID_NUMBER, CARD, "13812340000")
    texts.append(str(outage.value))
    with pytest.raises(ProviderUnavailable) as outage:
        down.verify_bank_card(NAME, ID_NUMBER, CARD, MOBILE)
    texts.append(str(outage.value))
    with pytest.raises(ProviderUnavailable) as outage:
        sandbox.verify_identity("超时" + NAME, ID_NUMBER)
    texts.append(str(outage.value))
    for text in texts:
        assert ID_NUMBER not in text
        assert CARD not in text
        assert ID_NUMBER[-8:] not in text


def test_build_provider() -> None:
    provider = build_provider("sandbox")
    assert isinstance(provider, SandboxVerificationProvider)
    with pytest.raises(ValueError, match="allowed: sandbox"):
        build_provider("acme")
