"""What a ThinManager Server may do: the full table of kind x role x not-on-license."""

import copy
import json
import pickle
from datetime import timedelta

import pytest

import tmslicense
from tests.tmslicense.conftest import NOW
from tmslicense import Action

ALL = list(Action)
MIRROR_REFUSED = {Action.RUN_CONSOLE, Action.CHANGE_CONFIG, Action.SHOW_THINSERVER_DATA}

# (kind, server index or None for a server not on the license) -> refused actions
TABLE = [
    ("standard", 0, set()),
    ("standard", None, set(ALL)),
    ("mirrored", 0, set()),
    ("mirrored", 1, MIRROR_REFUSED),
    ("mirrored", None, set(ALL)),
    ("enterprise", 0, set()),
    ("enterprise", 1, set()),
    ("enterprise", None, set(ALL)),
]


@pytest.mark.parametrize(("kind", "index", "refused"), TABLE)
def test_capability_table(make_license, kind, index, refused):
    lic = make_license(kind)
    server = lic.installation_ids[index] if index is not None else tmslicense.new_installation_id()
    caps = tmslicense.capabilities([lic], server)
    assert {a for a in ALL if not caps.allows(a)} == refused
    assert caps.serve_clients == (Action.SERVE_CLIENTS not in refused)
    assert caps.run_console == (Action.RUN_CONSOLE not in refused)
    assert caps.change_config == (Action.CHANGE_CONFIG not in refused)
    assert caps.show_thinserver_data == (Action.SHOW_THINSERVER_DATA not in refused)
    for action in ALL:
        assert (caps.message(action) is None) == (action not in refused)
    if index is None:
        assert caps.role is None and caps.seats == 0
        assert server in caps.message(Action.SERVE_CLIENTS)
        assert len(caps.ignored) == 1 and "not for this server" in caps.ignored[0][1]
    else:
        assert caps.role is lic.servers[index].role
        assert caps.seats == lic.seats


def test_mirrored_secondary_shows_the_thinserver_message(make_license):
    lic = make_license("mirrored")
    caps = tmslicense.capabilities([lic], lic.installation_ids[1])
    assert caps.message(Action.SHOW_THINSERVER_DATA) == (
        "ThinManager is not allowed to display the ThinServer data"
    )
    assert lic.installation_ids[0] in caps.message(Action.CHANGE_CONFIG)
    assert caps.serve_clients


def test_no_license_at_all_refuses_everything_with_the_reason():
    server = tmslicense.new_installation_id()
    caps = tmslicense.capabilities([], server)
    assert not any(caps.allows(a) for a in ALL)
    assert "No valid license" in caps.message(Action.RUN_CONSOLE)


def test_seats_and_features_add_up_and_foreign_files_are_ignored(make_license):
    base = make_license("standard", seats=10, features=["relevance"])
    this = base.installation_ids[0]
    addon = make_license("standard", ids=[this], seats=5, features=["multimonitor"])
    foreign = make_license("standard", seats=100)
    caps = tmslicense.capabilities([base, addon, foreign], this)
    assert caps.seats == 15
    assert caps.features == {"relevance", "multimonitor"}
    assert caps.licenses == (base, addon)
    assert [lic for lic, _ in caps.ignored] == [foreign]


def test_a_mirror_with_a_complete_duplicate_license_of_its_own_is_fully_functional(
    make_license,
):
    """ "A fully redundant ThinManager Server with a complete set of duplicate licenses":
    the mirror's own license of the same product and edition, with as many seats and every
    feature, makes it fully functional."""
    mirrored = make_license("mirrored")
    secondary = mirrored.installation_ids[1]
    own = make_license("standard", ids=[secondary], features=["multimonitor", "relevance", "x"])
    assert tmslicense.duplicates(own, mirrored)
    caps = tmslicense.capabilities([mirrored, own], secondary)
    assert caps.role is tmslicense.Role.PRIMARY
    assert caps.show_thinserver_data
    assert caps.seats == own.seats + mirrored.seats  # its own, and the primary's on a failover
    # What the Licensing window says of it: synchronized with the primary, whose license it
    # is the mirror of while fully functional.
    assert caps.partners == (mirrored.installation_ids[0],)
    assert caps.fully_functional_mirror_of == (mirrored.license_number,)
    short = tmslicense.capabilities([mirrored], secondary)
    assert (short.partners, short.fully_functional_mirror_of) == (caps.partners, ())


@pytest.mark.parametrize(
    "add_on",
    [
        {"seats": 1},  # a small add-on
        {"features": ["relevance"]},  # without one of the mirrored license's features
        {"edition": "Standard"},
        {"product": "ThinManager Platform"},
    ],
)
def test_a_mirror_with_a_license_of_its_own_short_of_a_duplicate_stays_a_mirror(
    make_license, add_on
):
    """A cheap add-on bound to the secondary does not make a mirrored license an enterprise
    one: the secondary still only serves thin clients, and says what it lacks."""
    mirrored = make_license("mirrored")
    secondary = mirrored.installation_ids[1]
    own = make_license("standard", ids=[secondary], **add_on)
    caps = tmslicense.capabilities([mirrored, own], secondary)
    assert caps.role is tmslicense.Role.MIRROR
    assert caps.serve_clients and not caps.run_console and not caps.change_config
    assert caps.message(Action.SHOW_THINSERVER_DATA) == tmslicense.THINSERVER_DATA_REFUSED
    assert caps.message(Action.CHANGE_CONFIG).endswith(
        "A fully redundant server needs a complete duplicate of each license it is the mirror "
        f"of: none here duplicates license {mirrored.license_number} (ThinManager Premium, 25 "
        "seats, features multimonitor, relevance)."
    )
    assert caps.seats == mirrored.seats + own.seats


@pytest.mark.parametrize("enterprise_seats", [1, 25])
def test_an_enterprise_license_makes_a_mirror_fully_functional_only_as_its_duplicate(
    make_license, enterprise_seats
):
    """A server of an enterprise pair that is also the mirror of another license: its
    enterprise license is one of its own like any other, fully functional only if it
    duplicates the license mirrored (a 1-seat enterprise license beside a 25-seat mirrored
    one is no complete set); the pair's other server is fully functional by it as ever."""
    other = make_license("mirrored")  # 25 seats
    primary, server = other.installation_ids
    for ids in ([server, tmslicense.new_installation_id()], [primary, server]):
        enterprise = make_license("enterprise", ids=ids, seats=enterprise_seats)
        caps = tmslicense.capabilities([other, enterprise], server)
        full = enterprise_seats >= other.seats
        assert caps.change_config is full and caps.run_console is full and caps.serve_clients
        assert caps.role is (enterprise.server(server).role if full else tmslicense.Role.MIRROR)
        assert caps.seats == other.seats + enterprise.seats
        partner = next(i for i in ids if i != server)
        assert tmslicense.capabilities([other, enterprise], partner).change_config


def test_the_primary_of_a_small_pair_is_no_duplicate_of_a_bigger_license_it_mirrors(
    make_license,
):
    """Two mirrored licenses binding one pair in opposite roles (a 1-seat one with the
    secondary as its primary) make no enterprise pair: the pair's primary is fully
    functional, its secondary stays a mirror; so does a server in two pairs."""
    big = make_license("mirrored", seats=25)
    primary, secondary = big.installation_ids
    for partner in (primary, tmslicense.new_installation_id()):
        small = make_license("mirrored", ids=[secondary, partner], seats=1)
        caps = tmslicense.capabilities([big, small], secondary)
        assert caps.role is tmslicense.Role.MIRROR and caps.serve_clients
        assert not caps.run_console and not caps.change_config
        assert f"none here duplicates license {big.license_number}" in caps.message(
            Action.RUN_CONSOLE
        )
        assert caps.seats == 26
    small = make_license("mirrored", ids=[secondary, primary], seats=1)
    caps = tmslicense.capabilities([big, small], primary)  # small's mirror: big duplicates it
    assert caps.role is tmslicense.Role.PRIMARY and caps.change_config
    assert caps.seats == 26


def test_two_pair_licenses_duplicating_each_other_make_both_servers_fully_functional(
    make_license,
):
    """Each server the primary of a license that duplicates the one it mirrors: a complete
    set of duplicate licenses on both, their seats added up."""
    first = make_license("mirrored", seats=10)
    a, b = first.installation_ids
    second = make_license("mirrored", ids=[b, a], seats=10)
    for server in (a, b):
        caps = tmslicense.capabilities([first, second], server)
        assert caps.role is tmslicense.Role.PRIMARY and caps.change_config
        assert caps.seats == 20


def test_one_license_of_its_own_duplicates_one_mirrored_license_only(make_license):
    """A complete set: a mirror of two licenses needs two of its own."""
    first = make_license("mirrored", seats=10)
    secondary = first.installation_ids[1]
    second = make_license("mirrored", ids=[first.installation_ids[0], secondary], seats=10)
    own = make_license("standard", ids=[secondary], seats=10)
    caps = tmslicense.capabilities([first, second, own], secondary)
    assert caps.role is tmslicense.Role.MIRROR and not caps.change_config
    another = make_license("standard", ids=[secondary], seats=12)
    caps = tmslicense.capabilities([first, second, own, another], secondary)
    assert caps.role is tmslicense.Role.PRIMARY and caps.change_config


def test_a_license_counts_once_however_many_of_its_files(make_license):
    """Copies of a file, or an older issue kept beside its reissue, add no seats."""
    lic = make_license("mirrored", seats=5)
    server = lic.installation_ids[1]
    reissue = make_license(
        "mirrored",
        ids=lic.installation_ids,
        license_number=lic.license_number,
        serial="FEDCBA9876543210",
        seats=7,
        issued_at=lic.issued_at + timedelta(days=1),
    )
    other = make_license("enterprise", ids=lic.installation_ids, seats=3)

    caps = tmslicense.capabilities([lic, lic, lic], server)
    assert caps.seats == 5 and caps.licenses == (lic,)
    assert [reason for _, reason in caps.ignored] == [
        f"a copy of the file {lic.serial} of the same license"
    ] * 2

    for order in ([lic, reissue, other], [reissue, lic, other]):
        caps = tmslicense.capabilities(order, server)
        assert caps.seats == 7 + 3
        assert set(caps.licenses) == {reissue, other}
        replaced = f"replaced by the file {reissue.serial} of the same license"
        assert caps.ignored == ((lic, replaced),)
    # The newest issue decides the role too: an enterprise reissue makes the mirror redundant.
    upgraded = make_license(
        "enterprise",
        ids=lic.installation_ids,
        license_number=lic.license_number,
        serial="FEDCBA9876543210",
        issued_at=lic.issued_at + timedelta(days=1),
    )
    assert tmslicense.capabilities([upgraded, lic], server).change_config


def test_a_license_that_expired_since_it_was_verified_stops_counting(make_license):
    """A server verifies its files at start and runs for months: each asking is at its time."""
    from datetime import UTC, datetime, timedelta

    from tests.tmslicense.conftest import NOW, later

    lic = make_license("mirrored", expires_at=later(30))
    primary = lic.installation_ids[0]
    assert tmslicense.capabilities([lic], primary, now=later(29)).run_console
    caps = tmslicense.capabilities([lic], primary, now=later(30))
    assert not caps.serve_clients and caps.role is None and caps.licenses == ()
    assert caps.ignored == ((lic, f"expired on {later(30):%Y-%m-%d} 12:00 UTC"),)
    assert caps.message(Action.SERVE_CLIENTS).endswith(
        f"Not counted: license {lic.license_number}, expired on {later(30):%Y-%m-%d} 12:00 UTC."
    )
    assert tmslicense.capabilities([lic], primary, now=NOW).serve_clients
    # With no time given, the clock's: a license that expired a day ago does not count.
    gone = make_license("standard", ids=[primary], expires_at=datetime.now(UTC) - timedelta(days=1))
    assert tmslicense.capabilities([gone], primary).role is None


def test_capabilities_say_when_the_first_counted_license_expires(make_license):
    """A TMS asks again then (what the server may do changes), and warns ahead of it."""
    from tests.tmslicense.conftest import later

    base = make_license("standard", expires_at=later(90))
    this = base.installation_ids[0]
    addon = make_license("standard", ids=[this], expires_at=later(30))
    forever = make_license("standard", ids=[this])
    elsewhere = make_license("standard", expires_at=later(10))  # not counted here
    caps = tmslicense.capabilities([base, addon, forever, elsewhere], this, now=NOW)
    assert caps.next_expiry == later(30)
    assert tmslicense.capabilities([base, addon], this, now=later(30)).next_expiry == later(90)
    assert tmslicense.capabilities([forever], this, now=NOW).next_expiry is None
    assert tmslicense.capabilities([], this, now=NOW).next_expiry is None


def test_an_older_file_does_not_count_again_once_the_newer_expired(make_license):
    """Support shortened the license and reissued it: the old, longer file does not come
    back when the new one expires."""
    from tests.tmslicense.conftest import later

    old = make_license("standard", seats=50, expires_at=later(300), serial="OLD")
    new = make_license(
        "standard",
        ids=old.installation_ids,
        license_number=old.license_number,
        seats=5,
        expires_at=later(30),
        issued_at=later(1),
        serial="NEW",
    )
    this = old.installation_ids[0]
    assert tmslicense.capabilities([old, new], this, now=later(2)).seats == 5
    caps = tmslicense.capabilities([old, new], this, now=later(31))
    assert caps.role is None and caps.seats == 0
    assert {why for _, why in caps.ignored} == {
        "replaced by the file NEW of the same license",
        f"expired on {later(30):%Y-%m-%d} 12:00 UTC",
    }


def test_a_license_moved_to_other_servers_no_longer_counts_by_its_older_file(make_license):
    """Support moved the license from server A to C: A's older file, given with the newer one
    (a shared folder, a copy), does not keep A licensed."""
    from tests.tmslicense.conftest import later

    old = make_license("standard", serial="OLD")
    a = old.installation_ids[0]
    moved = make_license(
        "standard", license_number=old.license_number, issued_at=later(1), serial="MOVED"
    )
    c = moved.installation_ids[0]
    for files in ([old, moved], [moved, old]):
        here = tmslicense.capabilities(files, a, now=later(2))
        assert here.role is None and here.seats == 0
        assert {why for _, why in here.ignored} == {
            "replaced by the file MOVED of the same license",
            f"issued for {c}, not for this server",
        }
        there = tmslicense.capabilities(files, c, now=later(2))
        assert there.role is tmslicense.Role.PRIMARY and there.licenses == (moved,)


def test_a_clock_set_back_says_so_where_an_action_is_refused(make_license):
    from tests.tmslicense.conftest import later

    lic = make_license("standard")
    caps = tmslicense.capabilities([lic], lic.installation_ids[0], now=later(-400))
    assert not caps.serve_clients
    # The time it is refused before is not the issue time (a day's tolerance): not "valid from".
    message = caps.message(Action.SERVE_CLIENTS)
    assert "issued 2026-11-25 12:00 UTC, more than a day after this server's clock (" in message
    assert "valid from" not in message
    assert caps.message(Action.SERVE_CLIENTS).endswith("check the clock.")


def test_a_refusal_on_no_license_lists_the_first_few_reasons_of_each_kind(make_license):
    """A folder of many files for other servers (a shared drive copied whole) makes a message
    of a few lines, not pages; ``ignored`` keeps every reason."""
    from tmslicense.gating import REASONS_SHOWN

    others = [make_license("standard") for _ in range(REASONS_SHOWN + 3)]
    this = tmslicense.new_installation_id()
    files = [f"f{n}.lic: The license file's signature does not match." for n in range(8)]
    caps = tmslicense.capabilities(others, this, not_used=files)
    assert len(caps.ignored) == REASONS_SHOWN + 3
    message = caps.message(Action.SERVE_CLIENTS)
    assert message.count("not for this server") == REASONS_SHOWN
    assert "not for this server; and 3 more. Not used: f0.lic:" in message
    assert message.count(".lic:") == REASONS_SHOWN
    assert message.endswith(
        "f4.lic: The license file's signature does not match. Not used: 3 more."
    )
    # As many as are shown: no "more".
    caps = tmslicense.capabilities(others[:REASONS_SHOWN], this, not_used=files[:REASONS_SHOWN])
    assert "more" not in caps.message(Action.SERVE_CLIENTS)


def test_capabilities_hash_copy_pickle_and_go_into_json(make_license):
    lic = make_license("mirrored")
    caps = tmslicense.capabilities([lic], lic.installation_ids[1], now=NOW)
    assert hash(caps) == hash(tmslicense.capabilities([lic], lic.installation_ids[1], now=NOW))
    assert copy.deepcopy(caps) == pickle.loads(pickle.dumps(caps)) == caps  # noqa: S301
    assert json.loads(json.dumps(caps.refusals))["show-thinserver-data"] == (
        tmslicense.THINSERVER_DATA_REFUSED
    )


def test_a_time_without_a_zone_is_refused_with_or_without_a_license(make_license):
    lic = make_license("standard")
    naive = NOW.replace(tzinfo=None)
    for licenses in ([lic], []):
        with pytest.raises(ValueError, match="time zone"):
            tmslicense.capabilities(licenses, lic.installation_ids[0], now=naive)
