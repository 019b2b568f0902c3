"""tmslicense: what a ThinManager Server embeds to verify license files and gate its features.

Standard library and ``cryptography`` only; no Django. See docs/tmslicense.md.
"""

from typing import TYPE_CHECKING

from .errors import (
    AlreadyReplaced,
    BadSignature,
    FileTooLarge,
    InvalidPayload,
    LicenseError,
    LicenseExpired,
    LicenseNotYetValid,
    LicenseRevoked,
    MalformedFile,
    NotForThisServer,
    Reason,
    UnknownKey,
    UnreadableFile,
    UnsupportedAlgorithm,
)
from .fileformat import (
    CLOCK_TOLERANCE,
    MAX_FILE_SIZE,
    read_envelope,
    read_license,
    sign_license,
    utc_time,
    verify_license,
)
from .gating import THINSERVER_DATA_REFUSED, Action, Capabilities, capabilities, duplicates
from .ids import (
    InvalidIdentifier,
    InvalidInstallationId,
    InvalidLicenseNumber,
    grouped_symbols,
    load_or_create_installation_id,
    new_installation_id,
    new_license_number,
    normalize_installation_id,
    normalize_license_number,
)
from .keyring import MAX_KEYRING, Keyring, KeyringError, key_id
from .model import YEARS, Kind, License, Role, Server, case_variants, check_issuable, text_problem
from .revocation import sign_revoked_list, verify_revoked_list

__all__ = [
    "Action",
    "AlreadyReplaced",
    "BadSignature",
    "CLOCK_TOLERANCE",
    "Capabilities",
    "DataFolder",
    "DataFolderError",
    "FileTooLarge",
    "InvalidIdentifier",
    "InvalidInstallationId",
    "InvalidLicenseNumber",
    "Imported",
    "InvalidPayload",
    "Keyring",
    "KeyringChange",
    "KeyringError",
    "Kind",
    "License",
    "LicenseError",
    "LicenseExpired",
    "LicenseNotYetValid",
    "LicenseRevoked",
    "MAX_FILE_SIZE",
    "MAX_KEYRING",
    "MalformedFile",
    "NotForThisServer",
    "Reason",
    "Role",
    "Server",
    "THINSERVER_DATA_REFUSED",
    "UnknownKey",
    "UnreadableFile",
    "UnsupportedAlgorithm",
    "YEARS",
    "capabilities",
    "duplicates",
    "case_variants",
    "check_issuable",
    "grouped_symbols",
    "key_id",
    "load_or_create_installation_id",
    "new_installation_id",
    "new_license_number",
    "normalize_installation_id",
    "normalize_license_number",
    "read_envelope",
    "read_license",
    "sign_license",
    "sign_revoked_list",
    "text_problem",
    "utc_time",
    "verify_license",
    "verify_revoked_list",
]


# The data folder's part (and pathlib) is imported when first used: a TMS that only verifies
# files starts faster.
_FROM_STORE = {"DataFolder", "DataFolderError", "Imported", "KeyringChange"}
if TYPE_CHECKING:
    from .store import DataFolder, DataFolderError, Imported, KeyringChange


def __getattr__(name: str):
    if name in _FROM_STORE:
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module 'tmslicense' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_STORE})
