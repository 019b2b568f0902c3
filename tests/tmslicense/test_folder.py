"""DataFolder: what a TMS that embeds tmslicense calls, instead of the command line."""

from datetime import UTC, datetime, timedelta

import pytest

import tmslicense
from tmslicense import Action


@pytest.fixture
def folder(tmp_path):
    return tmslicense.DataFolder(tmp_path / "tms")


def _recent(make_license, **kwargs):
    return make_license(issued_at=datetime.now(UTC).replace(microsecond=0), **kwargs)


def test_a_server_imports_its_file_and_is_gated_by_it(folder, make_license, sign, keyring):
    this = folder.installation_id
    assert folder.installation_id == this  # made once, kept
    assert not folder.capabilities(keyring).serve_clients
    primary = tmslicense.new_installation_id()
    lic = _recent(make_license, kind="mirrored", ids=[primary, this])
    done = folder.import_license(sign(lic).encode("utf-16"), keyring)  # bytes, any encoding
    assert (done.license, done.already_installed) == (lic, False)
    assert done.path == folder.path / "licenses" / f"{lic.license_number}.lic"
    caps = folder.capabilities(keyring)
    assert caps.serve_clients and not caps.change_config
    assert caps.message(Action.SHOW_THINSERVER_DATA) == tmslicense.THINSERVER_DATA_REFUSED
    again = folder.import_license(sign(lic), keyring)
    assert again.already_installed and again.path == done.path


def test_what_does_not_verify_is_refused_and_changes_nothing(folder, make_license, sign, keyring):
    this = folder.installation_id
    newer = _recent(make_license, kind="standard", ids=[this], serial="NEWER")
    folder.import_license(sign(newer), keyring)
    before = sorted(p.read_bytes() for p in folder.path.rglob("*.lic"))
    older = tmslicense.License.create(
        **{
            **{f: getattr(newer, f) for f in ("license_number", "kind", "product", "edition")},
            **{f: getattr(newer, f) for f in ("seats", "features", "customer", "expires_at")},
            "maintenance_end": newer.maintenance_end,
            "installation_ids": [this],
            "serial": "OLDER",
            "issued_at": newer.issued_at - timedelta(days=3),
        }
    )
    with pytest.raises(tmslicense.LicenseError, match="newer file"):
        folder.import_license(sign(older), keyring)
    foreign = _recent(make_license, kind="standard")
    with pytest.raises(tmslicense.NotForThisServer):
        folder.import_license(sign(foreign), keyring)
    assert sorted(p.read_bytes() for p in folder.path.rglob("*.lic")) == before


def test_a_revoked_list_stops_the_file_it_names(
    folder, make_license, sign, keyring, private_key, kid
):
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    folder.import_license(sign(lic), keyring)
    signed = tmslicense.sign_revoked_list([lic.serial], private_key, kid)
    assert folder.add_revoked_list(signed.encode(), keyring) == [lic.serial]
    assert folder.add_revoked_list(signed, keyring) == []  # added once
    valid, refused = folder.licenses(keyring)
    assert valid == [] and "has been revoked" in refused[0][1]
    assert not folder.capabilities(keyring).serve_clients
    with pytest.raises(tmslicense.BadSignature):
        folder.add_revoked_list(signed.replace(lic.serial, "0" * 16), keyring)


def test_capabilities_are_decided_at_the_time_asked(folder, make_license, sign, keyring):
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id], expires_at=ends)
    folder.import_license(sign(lic), keyring)
    assert folder.capabilities(keyring).run_console
    later = folder.capabilities(keyring, now=ends + timedelta(seconds=1))
    assert not later.run_console and "expired on" in later.message(Action.RUN_CONSOLE)
