"""Installation IDs and license numbers: forgiving input, every typo caught."""

import multiprocessing
import stat

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


def test_license_number_prefix_is_optional():
    number = tmslicense.new_license_number()
    assert tmslicense.normalize_license_number(number[3:]) == number
    assert tmslicense.normalize_license_number(number.lower()) == number


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("", "required", "Enter the Installation ID"),
        ("ABCD-EFGH", "length", "20 characters; 8 were entered"),
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


def test_an_installation_id_in_the_license_number_field_says_so():
    with pytest.raises(
        tmslicense.InvalidLicenseNumber, match="12 characters after TM-; 20 were entered"
    ):
        tmslicense.normalize_license_number(tmslicense.new_installation_id())


def test_a_short_license_number_counts_the_characters_after_the_prefix():
    with pytest.raises(tmslicense.InvalidLicenseNumber, match="12 characters after TM-; 11 were"):
        tmslicense.normalize_license_number("TM-DEM0-0000-01H")


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
