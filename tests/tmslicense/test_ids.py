"""Installation IDs and license numbers: forgiving input, every typo caught."""

import multiprocessing
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import tmslicense
from tmslicense.ids import ALPHABET

SAMPLES = 50


def _typos(canonical: str):
    """Every single substitution and every swap of two different neighbours."""
    symbols = canonical.replace("-", "")
    prefix = ""
    if canonical.startswith("TM-"):
        prefix, symbols = "TM-", canonical[3:].replace("-", "")
    for i, original in enumerate(symbols):
        for replacement in ALPHABET:
            if replacement != original:
                yield prefix + symbols[:i] + replacement + symbols[i + 1 :]
    for i in range(len(symbols) - 1):
        if symbols[i] != symbols[i + 1]:
            yield prefix + symbols[:i] + symbols[i + 1] + symbols[i] + symbols[i + 2 :]


@pytest.mark.parametrize(
    ("make", "normalize", "error"),
    [
        (
            tmslicense.new_installation_id,
            tmslicense.normalize_installation_id,
            tmslicense.InvalidInstallationId,
        ),
        (
            tmslicense.new_license_number,
            tmslicense.normalize_license_number,
            tmslicense.InvalidLicenseNumber,
        ),
    ],
    ids=["installation-id", "license-number"],
)
def test_every_substitution_and_adjacent_swap_is_detected(make, normalize, error):
    checked = 0
    for _ in range(SAMPLES):
        canonical = make()
        assert normalize(canonical) == canonical
        for typo in _typos(canonical):
            with pytest.raises(error) as caught:
                normalize(typo)
            assert caught.value.code == "checksum", typo
            checked += 1
    assert checked > SAMPLES * 12 * 31  # every position of every sample was tried


def test_input_is_forgiving():
    canonical = tmslicense.new_installation_id()
    sloppy = f"  {canonical.lower().replace('-', ' ')}\t"
    assert tmslicense.normalize_installation_id(sloppy) == canonical
    readable = tmslicense.normalize_installation_id("DEMO-0000-0000-0000-001G".replace("0", "O"))
    assert readable == "DEM0-0000-0000-0000-001G"
    assert tmslicense.normalize_installation_id(readable.replace("1", "l")) == readable
    assert tmslicense.normalize_installation_id(readable.replace("1", "I")) == readable


@pytest.mark.parametrize("end", [".", ". ", ",", ";", "..."])
def test_a_sentences_full_stop_or_comma_after_an_id_is_left_out(end):
    """Copied from the end of a sentence, or a phone's double space typing ". ": the ID is
    read without it (it was called a character never used in an ID)."""
    canonical = tmslicense.new_installation_id()
    assert tmslicense.normalize_installation_id(canonical + end) == canonical
    assert tmslicense.normalize_license_number(LICENSE_NUMBER.lower() + end) == LICENSE_NUMBER
    # Inside an ID it is still named.
    with pytest.raises(tmslicense.InvalidInstallationId) as caught:
        tmslicense.normalize_installation_id(canonical[:4] + "." + canonical[5:])
    assert caught.value.code == "characters"


def test_license_number_prefix_is_optional():
    number = tmslicense.new_license_number()
    assert tmslicense.normalize_license_number(number[3:]) == number
    assert tmslicense.normalize_license_number(number.lower()) == number


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("", "required", "Enter the Installation ID"),
        ("ABCD-EFGH", "length", "20 characters, not counting dashes; 8 were entered"),
        ("A", "length", "20 characters, not counting dashes; 1 was entered"),
        ("UUUU-UUUU-UUUU-UUUU-UUUU", "characters", "'U'"),
        ("ABCD-EFGH-JKMN-PQRS-TV#Z", "characters", "'#'"),
        (None, "type", "must be text"),
    ],
)
def test_clear_messages_for_malformed_ids(text, code, words):
    with pytest.raises(tmslicense.InvalidInstallationId) as caught:
        tmslicense.normalize_installation_id(text)
    assert caught.value.code == code
    assert words in caught.value.message


def test_a_short_license_number_counts_the_characters_after_the_prefix_without_dashes():
    with pytest.raises(tmslicense.InvalidLicenseNumber) as caught:
        tmslicense.normalize_license_number("TM-DEM0-0000-01H")
    assert caught.value.code == "length"
    assert caught.value.message == (
        "The license number has 12 characters after TM-, not counting dashes; 11 were entered. "
        "It looks like TM-XXXX-XXXX-XXXX."
    )


@pytest.mark.parametrize(
    ("typed", "counted"),
    [
        ("TMDEM000000001H", 13),
        ("TMDEM00000001", 11),
        ("TM-DEM0-0000-0001H", 13),
        ("TM0001", 4),
        ("TM-TMAB-CDEF-GH", 10),  # its own symbols start with TM: the prefix is taken once
    ],
)
def test_a_prefix_typed_without_its_dash_is_not_counted(typed, counted):
    with pytest.raises(tmslicense.InvalidLicenseNumber) as caught:
        tmslicense.normalize_license_number(typed)
    assert f"; {counted} were entered." in caught.value.message


@pytest.mark.parametrize("between", [" ", "\n", "\r\n  ", ""])
def test_two_installation_ids_pasted_in_one_field_are_named(between):
    first, second = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    with pytest.raises(tmslicense.InvalidInstallationId) as caught:
        tmslicense.normalize_installation_id(first + between + second.lower())
    assert caught.value.code == "length"
    assert f"two Installation IDs, {first} and {second}: enter one at a time" in str(caught.value)


def test_installation_id_is_made_once_and_kept(tmp_path):
    first = tmslicense.load_or_create_installation_id(tmp_path)
    assert tmslicense.normalize_installation_id(first) == first
    assert tmslicense.load_or_create_installation_id(tmp_path) == first
    secret = tmp_path / "installation.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert tmslicense.load_or_create_installation_id(tmp_path / "other") != first


def test_damaged_secret_is_reported(tmp_path):
    (tmp_path / "installation.secret").write_text("not hex")
    with pytest.raises(tmslicense.InvalidInstallationId, match="damaged"):
        tmslicense.load_or_create_installation_id(tmp_path)


def _first_id(path, queue):
    queue.put(tmslicense.load_or_create_installation_id(path))


def test_concurrent_first_calls_agree_on_one_id(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_first_id, args=(tmp_path, queue)) for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    ids = {queue.get(timeout=5) for _ in processes}
    assert len(ids) == 1
    assert ids == {tmslicense.load_or_create_installation_id(tmp_path)}


def test_threads_making_the_id_at_once_agree_on_one(tmp_path):
    """Threads of one process share its pid, as do two containers (each pid 1) that share
    a volume: the first secret must still win for all of them."""
    threads = 8
    for number in range(30):
        folder = tmp_path / str(number)
        start = threading.Barrier(threads)

        def first_id(folder=folder, start=start):
            start.wait()
            return tmslicense.load_or_create_installation_id(folder)

        with ThreadPoolExecutor(threads) as pool:
            ids = {future.result() for future in [pool.submit(first_id) for _ in range(threads)]}
        assert ids == {tmslicense.load_or_create_installation_id(folder)}
        assert [p.name for p in folder.iterdir()] == ["installation.secret"]


LICENSE_NUMBER = "TM-DEM0-0000-001H"
INSTALLATION_ID = "YKWH-A8J4-FWF0-R2QM-G4Y9"

# What PDFs, e-mails and word processors put where a person sees a dash or a space.
DASHES = [*map(chr, range(0x2010, 0x2016)), "\u2212", "\ufe58", "\ufe63", "\uff0d", "\u00ad"]
SPACES = ["\u00a0", *map(chr, range(0x2000, 0x200B)), "\u202f", "\u205f", "\u3000", "\n", "\r\n"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


@pytest.mark.parametrize(
    "separator",
    DASHES + SPACES + INVISIBLE,
    ids=lambda text: "+".join(f"U+{ord(ch):04X}" for ch in text),
)
def test_pasted_dashes_spaces_and_invisible_characters_are_ignored(separator):
    def pasted(canonical):
        return separator + canonical.replace("-", separator) + separator

    assert tmslicense.normalize_license_number(pasted(LICENSE_NUMBER)) == LICENSE_NUMBER
    assert tmslicense.normalize_installation_id(pasted(INSTALLATION_ID)) == INSTALLATION_ID


def test_pasted_text_mixing_dashes_and_no_break_spaces_is_accepted():
    pasted = "\ufeffYKWH\u2013A8J4\u00a0FWF0\u2011R2QM\u200b G4Y9\u00a0"
    assert tmslicense.normalize_installation_id(pasted) == INSTALLATION_ID
    assert tmslicense.normalize_license_number("TM\u2011DEM0\u2011OOOO\u2011OOlH") == LICENSE_NUMBER


def test_full_width_letters_and_digits_are_accepted():
    full_width = "ＴＭ－ＤＥＭ０－００００－００１Ｈ"
    assert tmslicense.normalize_license_number(full_width) == LICENSE_NUMBER
    assert (
        tmslicense.normalize_license_number("ｔｍ　ｄｅｍｏ　ｏｏｏｏ　ｏｏｌｈ") == LICENSE_NUMBER
    )
    assert (
        tmslicense.normalize_installation_id("ＹＫＷＨ－Ａ８Ｊ４－ＦＷＦ０－Ｒ２ＱＭ－Ｇ４Ｙ９")
        == INSTALLATION_ID
    )


@pytest.mark.parametrize(
    ("wrong", "shown"),
    [
        ("\x07", "U+0007 (control character)"),
        ("\x00", "U+0000 (control character)"),
        ("\u0410", "'\u0410' (U+0410 CYRILLIC CAPITAL LETTER A)"),
        ("\u0301", "U+0301 COMBINING ACUTE ACCENT"),
        ("'", "U+0027 APOSTROPHE"),
        ("\u00df", "'\u00df' (U+00DF LATIN SMALL LETTER SHARP S)"),
        ("\ue000", "U+E000 (private-use character)"),
        ("\ud800", "U+D800 (broken character)"),
    ],
    ids=[
        "bell",
        "nul",
        "cyrillic-a",
        "combining-accent",
        "apostrophe",
        "sharp-s",
        "private-use",
        "lone-surrogate",
    ],
)
def test_wrong_characters_are_named_without_python_escapes(wrong, shown):
    with pytest.raises(tmslicense.InvalidInstallationId) as caught:
        tmslicense.normalize_installation_id(INSTALLATION_ID[:-1] + wrong)
    assert caught.value.code == "characters"
    assert caught.value.message == (
        f"The Installation ID contains characters that are never used in it: {shown}. "
        "It uses only digits and the letters A-Z without I, L, O and U."
    )


def test_several_wrong_characters_are_each_named_once():
    with pytest.raises(tmslicense.InvalidLicenseNumber) as caught:
        tmslicense.normalize_license_number("TM-DEM0-0000-00#\x07#")
    assert "never used in it: U+0007 (control character), '#'." in caught.value.message


@pytest.mark.parametrize(
    "number",
    [
        LICENSE_NUMBER,
        "tm dem0 0000 001h",
        "TM\u2013DEM0\u20130000\u2013001H",
        f"License Number: {LICENSE_NUMBER}",  # copied with its label
    ],
)
def test_a_license_number_in_the_installation_id_field_says_so(number):
    with pytest.raises(tmslicense.InvalidInstallationId) as caught:
        tmslicense.normalize_installation_id(number)
    assert caught.value.code == "length"
    assert caught.value.message == (
        "This is a license number, not an Installation ID. The Installation ID is shown at the "
        "bottom of the Licensing window of the ThinManager Server."
    )


@pytest.mark.parametrize(
    "installation_id",
    [
        INSTALLATION_ID,
        "ykwh\u00a0a8j4\u00a0fwf0\u00a0r2qm\u00a0g4y9",
        f"Mirrored Installation ID: {INSTALLATION_ID}",  # copied with its label
    ],
)
def test_an_installation_id_in_the_license_number_field_says_so(installation_id):
    with pytest.raises(tmslicense.InvalidLicenseNumber) as caught:
        tmslicense.normalize_license_number(installation_id)
    assert caught.value.code == "length"
    assert caught.value.message == (
        "This is an Installation ID, not a license number. The license number is on your "
        "license certificate and starts with TM-."
    )


@pytest.mark.parametrize(
    "text",
    [
        "TM-DEM0-0000-001J",  # a license number with a typo is not recognized as one
        "DEM0-0000-001H",  # without TM it could as well be the start of an Installation ID
    ],
)
def test_only_a_whole_valid_license_number_is_called_one(text):
    with pytest.raises(tmslicense.InvalidInstallationId) as caught:
        tmslicense.normalize_installation_id(text)
    assert caught.value.code == "length"
    assert caught.value.message.startswith(
        "The Installation ID has 20 characters, not counting dashes; "
    )


def test_canonical_and_typed_ascii_input_leaves_the_unicode_tables_unloaded():
    # Installation IDs are normalized while a license is verified: keep that path lean.
    code = (
        "import sys, tmslicense\n"
        f"tmslicense.normalize_installation_id({INSTALLATION_ID!r})\n"
        f"tmslicense.normalize_license_number('tm dem0 0000 001h')\n"
        "print('unicodedata' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("typed", "grouped"),
    [
        ("ykwha8j4", "YKWH-A8J4"),
        ("ykwh a8j", "YKWH-A8J"),
        ("ykwh\u2013a8jo", "YKWH-A8J0"),  # pasted dash, O read as 0
        ("ykw", None),  # too short to mean anything
        ("user@example.com", None),  # not symbols
    ],
)
def test_the_start_of_an_id_is_grouped_as_stored_for_searching(typed, grouped):
    assert tmslicense.grouped_symbols(typed) == grouped


@pytest.mark.parametrize(
    "label",
    [
        "Installation ID: ",
        "Mirrored Installation ID:",
        "  synchronized thinmanager server :  ",  # as `tmslicense status` writes the partner
    ],
)
def test_the_label_copied_with_an_installation_id_is_left_out(label):
    installation_id = tmslicense.new_installation_id()
    assert tmslicense.normalize_installation_id(label + installation_id) == installation_id
    number = tmslicense.new_license_number()
    assert tmslicense.normalize_license_number("License Number: " + number.lower()) == number
    # Not a label of the other field, nor text before a colon of any kind.
    for typed in (f"License Number: {installation_id}", f"ID: {installation_id}"):
        with pytest.raises(tmslicense.InvalidInstallationId, match="':'"):
            tmslicense.normalize_installation_id(typed)
    with pytest.raises(tmslicense.InvalidLicenseNumber, match="':'"):
        tmslicense.normalize_license_number(f"Installation ID: {number}")
