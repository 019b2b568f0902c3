"""The license numbers and Installation IDs the documentation shows are ones the library takes:
an integrator copies an example as it is written."""

import re
from pathlib import Path

import pytest

import tmslicense

ROOT = Path(__file__).resolve().parents[2]
SHOWN = re.compile(r"\b(?:TM-[0-9A-Z]{4}(?:-[0-9A-Z]{4}){2}|[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})\b")


def _examples():
    for path in [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("tmslicense/*.py")]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, (line, after) in enumerate(zip(lines, [*lines[1:], ""], strict=True), 1):
            if after.lstrip().startswith("# Invalid"):
                continue  # an example of a refusal, with the refusal under it
            for shown in SHOWN.findall(line):
                if "XXXX" not in shown:  # a placeholder
                    yield f"{path.relative_to(ROOT)}:{number}", shown


def test_the_documentation_shows_numbers_and_ids_that_are_taken():
    examples = list(_examples())
    assert len(examples) > 10  # the pattern finds them
    for where, shown in examples:
        normalize = (
            tmslicense.normalize_license_number
            if shown.startswith("TM-")
            else tmslicense.normalize_installation_id
        )
        try:
            normalize(shown)
        except tmslicense.InvalidIdentifier as error:
            pytest.fail(f"{where}: {shown}: {error}")


def test_the_signatures_take_the_bytes_the_documentation_promises():
    """The package is typed (py.typed): a type-checked server passing a bytearray or a
    memoryview, which these read, must not be told it may not."""
    import typing

    taking = {
        tmslicense.read_envelope: "text",
        tmslicense.read_license: "text",
        tmslicense.verify_license: "text",
        tmslicense.verify_revoked_list: "text",
        tmslicense.Keyring.from_json: "text",
        tmslicense.DataFolder.import_license: "data",
        tmslicense.DataFolder.add_revoked_list: "data",
        tmslicense.DataFolder.install_keyring: "data",
    }
    for function, argument in taking.items():
        hint = typing.get_type_hints(function)[argument]
        assert set(typing.get_args(hint)) == {str, bytes, bytearray, memoryview}, function
    licenses = typing.get_type_hints(tmslicense.DataFolder.install_keyring)["licenses"]
    assert set(typing.get_args(typing.get_args(licenses)[0])) == {
        str,
        bytes,
        bytearray,
        memoryview,
    }
