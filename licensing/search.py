"""How a term a person typed or pasted is searched for: Installation IDs, license numbers and
serials are read from a server's Licensing window or a certificate, in any form."""

import re

import tmslicense
from tmslicense.ids import ALPHABET, INSTALLATION_ID

# Around an ID or a number copied from a sentence ("…, bound to W5G6-….", in a mail program's
# quotes), and no part of it.
_AROUND = " \t\r\n,.;:!?()[]{}<>\"'\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026"
# A server's role as the site, its lists and a server's status write it beside its ID: copied
# with it, and no part of what is searched for.
_ROLE = re.compile(r"\((?:primary|mirror|redundant|secondary)(?:,\s*this server)?\)", re.I)


def without_roles(term: str) -> str:
    return _ROLE.sub(" ", term)


def bare(text: str) -> str:
    """A word without the punctuation around it."""
    return text.strip(_AROUND)


def search_forms(term: str) -> list[str]:
    """The term as typed (a name can read as a valid number: ``Metro Paper SA``) and, when it
    reads as an Installation ID or a license number, in its canonical form; or, as the beginning
    of one typed without dashes (``ykwha8j4``, 4 characters or more), grouped as stored
    (``YKWH-A8J4``); and each of these of the term without the punctuation around it. Each
    form once, whatever its case (they are searched in any case)."""
    forms = {}
    for text in (term, bare(term)):
        for form in (text, canonical(text)):
            if form:
                forms.setdefault(form.upper(), form)
    return list(forms.values()) or [term]


def canonical(text: str) -> str | None:
    """An Installation ID or license number in its canonical form, else the beginning of
    an ID grouped as stored; None when the text is neither."""
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
    words = without_roles(term).split()
    for text in dict.fromkeys([term, *(words if len(words) > 1 else [])]):
        if why := _typo(bare(text)):
            return why if text == term else f"{bare(text)}: {why}"
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


def one_character_off(term: str) -> list[str]:
    """The Installation IDs and license numbers one character different from ``term``, one
    word with the form of one but not its check character (a character read out wrong, or
    two neighbours swapped), each in its canonical form: what it may have been meant as. The
    check character leaves a few dozen of the hundreds of variants."""
    text = bare(without_roles(term)).strip().upper()
    if not text or " " in text or not typo_in(text):
        return []
    at = [i for i, ch in enumerate(text) if ch.isalnum()]
    variants = {text[:i] + symbol + text[i + 1 :] for i in at for symbol in ALPHABET}
    for i, j in zip(at, at[1:], strict=False):  # neighbours, over a dash between them
        variants.add(text[:i] + text[j] + text[i + 1 : j] + text[i] + text[j + 1 :])
    meant = set()
    for variant in variants - {text}:
        for normalize, _ in _WHOLE:
            try:
                meant.add(normalize(variant))
                break
            except tmslicense.InvalidIdentifier:
                continue
    return sorted(meant)
