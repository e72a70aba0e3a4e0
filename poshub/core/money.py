"""Money is an integer number of fen (1/100 CNY) plus an ISO 4217 code.

There is exactly one rounding rule in PosHub: half-up to the fen, applied per
transaction, in :func:`round_half_up_fen`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100
CURRENCY_CNY = "CNY"


def round_half_up_fen(amount_fen: Decimal) -> int:
    """Round a fractional amount of fen half-up to a whole fen (0.5 fen → 1 fen)."""
    return int(amount_fen.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan_to_fen(text: str) -> int:
    """Parse a decimal yuan amount such as ``"1234.50"`` into fen, refusing sub-fen digits."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError("amounts have at most two decimal places")
    return int(fen)


def format_fen(amount_fen: int, *, symbol: str = "¥") -> str:
    """``123456`` → ``¥1,234.56``; negative amounts keep their sign in front."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), FEN_PER_YUAN)
    return f"{sign}{symbol}{yuan:,}.{fen:02d}"


@dataclass(frozen=True, slots=True)
class Money:
    amount_fen: int
    currency: str = CURRENCY_CNY

    def __post_init__(self) -> None:
        if not isinstance(self.amount_fen, int) or isinstance(self.amount_fen, bool):
            raise TypeError("amount_fen must be an int")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError("currency must be an ISO 4217 alphabetic code")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError("cannot add amounts in different currencies")
        return Money(self.amount_fen + other.amount_fen, self.currency)

    def __str__(self) -> str:
        return (
            format_fen(self.amount_fen)
            if self.currency == CURRENCY_CNY
            else (f"{self.currency} {format_fen(self.amount_fen, symbol='')}")
        )
