"""Password hashing (argon2id) and the password policy (R20)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from poshub.core import limits
from poshub.core.errors import N_

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters

# A password is checked against the same dummy hash when the user does not exist, so
# that the response time does not reveal which usernames are valid.
DUMMY_HASH = _hasher.hash("poshub-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problems(password: str, username: str) -> list[str]:
    """Message ids of every policy rule the password breaks (empty when acceptable)."""
    problems: list[str] = []
    if len(password) < limits.PASSWORD_LENGTH_MIN:
        problems.append(N_("The password must have at least {min_length} characters."))
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 3:
        problems.append(
            N_("The password must mix at least three of: lower case, upper case, digits, symbols.")
        )
    if username and username.lower() in password.lower():
        problems.append(N_("The password must not contain the user name."))
    return problems
