"""How a term a person typed or pasted is searched for: Installation IDs, license numbers and
serials are read from a server's Licensing window or a certificate, in any form."""

import re

import tmslicense
from tmslicense.ids import INSTALLATION_ID

# Around an ID or a number copied from a sentence ("…, bound to W5G6-….") or a list's cell
# ("… (primary)"), and no part of it.
_AROUND = " \t\r\n,.;:!?()[]{}<>\"'"


def search_forms(term: str) -> list[str]:
    """The term as typed (a name can read as a valid number: ``Metro Paper SA``) and, when it
    reads as an Installation ID or a license number, in its canonical form; or, as the beginning
    of one typed without dashes (``ykwha8j4``, 4 characters or more), grouped as stored
    (``YKWH-A8J4``); and each of these of the term without the punctuation around it. Each
    form once, whatever its case (they are searched in any case)."""
    forms = {}
    for text in (term, term.strip(_AROUND)):
        for form in (text, _canonical(text)):
            if form:
                forms.setdefault(form.upper(), form)
    return list(forms.values()) or [term]


def _canonical(text: str) -> str | None:
    for normalize in (tmslicense.normalize_installation_id, tmslicense.normalize_license_number):
        try:
            return normalize(text)
        except tmslicense.InvalidIdentifier:
            continue
    return tmslicense.grouped_symbols(text)


def may_be_in_a_file(word: str) -> bool:
    """Whether a word of a search may be a part of an Installation ID or a serial searched
    for: as long as the beginning of an Installation ID is (4 characters or more, without
    dashes). A shorter one is in most of them ("12" of ``Plant 12 Manufacturing``)."""
    return len(word.replace("-", "")) >= INSTALLATION_ID.group


# An Installation ID or a license number written whole, in its groups of four (one of three or
# five: a character dropped or doubled), is a mistake, not a part of one searched for (nor a
# date or another code of five groups).
_WHOLE = (
    (tmslicense.normalize_installation_id, re.compile(r"\s*\w{3,5}(?:-\w{3,5}){4}\s*")),
    (tmslicense.normalize_license_number, re.compile(r"\s*TM-\w{3,5}-\w{3,5}-\w{3,5}\s*", re.I)),
)


def typo_in(term: str) -> str | None:
    """What is wrong with a term, or one of its words, that has the form of an Installation ID
    or a license number but not its check character (read out or typed with one character
    wrong), or, written whole in its groups, not its length (a character dropped or doubled)."""
    words = term.split()
    for text in dict.fromkeys([term, *(words if len(words) > 1 else [])]):
        if why := _typo(text.strip(_AROUND)):
            return why if text == term else f"{text.strip(_AROUND)}: {why}"
    return None


def _typo(text: str) -> str | None:
    for normalize, whole in _WHOLE:
        try:
            normalize(text)
        except tmslicense.InvalidIdentifier as error:
            if error.code == "checksum" or (error.code == "length" and whole.fullmatch(text)):
                return error.message
        else:
            return None
    return None
