"""How a term a person typed or pasted is searched for: Installation IDs, license numbers and
serials are read from a server's Licensing window or a certificate, in any form."""

import tmslicense


def search_forms(term: str) -> list[str]:
    """The term as typed (a name can read as a valid number: ``Metro Paper SA``) and, when it
    reads as an Installation ID or a license number, in its canonical form; or, as the beginning
    of one typed without dashes (``ykwha8j4``, 4 characters or more), grouped as stored
    (``YKWH-A8J4``)."""
    for normalize in (tmslicense.normalize_installation_id, tmslicense.normalize_license_number):
        try:
            other = normalize(term)
            break
        except tmslicense.InvalidIdentifier:
            continue
    else:
        other = tmslicense.grouped_symbols(term)
    return [term] if other in (None, term) else [term, other]


def typo_in(term: str) -> str | None:
    """What is wrong with a term that has the form of an Installation ID or a license number
    but not its check character: read out or typed with one character wrong."""
    for normalize in (tmslicense.normalize_installation_id, tmslicense.normalize_license_number):
        try:
            normalize(term)
        except tmslicense.InvalidIdentifier as error:
            if error.code == "checksum":
                return error.message
        else:
            return None
    return None
