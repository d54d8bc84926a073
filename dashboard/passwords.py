"""Passwords: Argon2id hashes (argon2-cffi's defaults), rules for new ones, and equal work for
an account that does not exist.

A new password has at least 12 characters and is not one character repeated. Checking a
password against no account still verifies it against a dummy hash, so how long a login takes
does not tell whether an email has an account.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1000
"""Far beyond any passphrase; bounds the hashing work one request can ask for."""

HASHER = PasswordHasher()


class PasswordRuleError(ValueError):
    """A new password that breaks a rule; the message says which, never the password."""


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRuleError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRuleError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if len(set(password)) == 1:
        raise PasswordRuleError("the password must not be one character repeated")


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the hasher's now."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def verify_against_nothing(password: str) -> bool:
    """The work of a real check, for an email with no account (always False)."""
    verify_password(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])
    return False
