"""What a ThinManager Server may do, given the licenses it holds (the seed's rules)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .errors import AlreadyReplaced, NotForThisServer, Reason
from .fileformat import date_problem
from .ids import normalize_installation_id
from .model import License, Role

__all__ = ["Action", "Capabilities", "capabilities", "THINSERVER_DATA_REFUSED"]

THINSERVER_DATA_REFUSED = "ThinManager is not allowed to display the ThinServer data"
REASONS_SHOWN = 5  # of each kind, in the refusal on no license


class Action(enum.StrEnum):
    SERVE_CLIENTS = "serve-clients"
    RUN_CONSOLE = "run-console"
    CHANGE_CONFIG = "change-config"
    SHOW_THINSERVER_DATA = "show-thinserver-data"


@dataclass(frozen=True)
class Capabilities:
    """What this server may do, and for each refused action the message to show.

    >>> caps = capabilities([mirrored_license], mirror_id)  # doctest: +SKIP
    >>> caps.serve_clients, caps.change_config  # doctest: +SKIP
    (True, False)
    >>> caps.message(Action.SHOW_THINSERVER_DATA)  # doctest: +SKIP
    'ThinManager is not allowed to display the ThinServer data'
    """

    installation_id: str
    role: Role | None
    seats: int
    features: frozenset[str]
    licenses: tuple[License, ...]
    ignored: tuple[tuple[License, Reason], ...]  # each with why (a str with a .code)
    # Left out of the hash (a dict has none): it follows from the fields above.
    refusals: Mapping[Action, str] = field(default_factory=dict, hash=False)

    def allows(self, action: Action | str) -> bool:
        return Action(action) not in self.refusals

    def message(self, action: Action | str) -> str | None:
        """Why ``action`` is refused, or None when it is allowed."""
        return self.refusals.get(Action(action))

    @property
    def next_expiry(self) -> datetime | None:
        """When the first license counted here expires, or None when none does: what this
        server may do changes then (a TMS asks again at that time, and can warn ahead)."""
        return min((lic.expires_at for lic in self.licenses if lic.expires_at), default=None)

    @property
    def partners(self) -> tuple[str, ...]:
        """The other servers of the licenses counted here (the Licensing window's synchronized
        ThinManager Server), sorted."""
        ids = {i for lic in self.licenses for i in lic.installation_ids}
        return tuple(sorted(ids - {self.installation_id}))

    @property
    def fully_functional_mirror_of(self) -> tuple[str, ...]:
        """The license numbers this server is the mirror of while fully functional by
        duplicates of its own (empty on a mirror: it is one)."""
        if self.role is Role.MIRROR:
            return ()
        return tuple(
            lic.license_number
            for lic in self.licenses
            if lic.server(self.installation_id).role is Role.MIRROR
        )

    @property
    def serve_clients(self) -> bool:
        return self.allows(Action.SERVE_CLIENTS)

    @property
    def run_console(self) -> bool:
        return self.allows(Action.RUN_CONSOLE)

    @property
    def change_config(self) -> bool:
        return self.allows(Action.CHANGE_CONFIG)

    @property
    def show_thinserver_data(self) -> bool:
        return self.allows(Action.SHOW_THINSERVER_DATA)


def duplicates(own: License, mirrored: License) -> bool:
    """Whether a server's own license is a complete duplicate of a mirrored license it is
    the mirror of: the same product and edition, as many seats or more, every feature."""
    return (
        own.product == mirrored.product
        and own.edition == mirrored.edition
        and own.seats >= mirrored.seats
        and set(own.features) >= set(mirrored.features)
    )


def _without_duplicate(mirrored: list[License], own: list[License]) -> License | None:
    """ "A fully redundant ThinManager Server with a complete set of duplicate licenses": the
    first license this server is the mirror of left without a duplicate of its own, each of
    its own licenses duplicating one at most (an add-on bound to the secondary does not make a
    mirrored license an enterprise one); None when each has one."""
    matched: dict[int, License] = {}  # an own license's index -> the mirrored one it duplicates

    def match(lic: License, tried: set[int]) -> bool:  # one more pair, moving others if need be
        for index, candidate in enumerate(own):
            if index not in tried and duplicates(candidate, lic):
                tried.add(index)
                if index not in matched or match(matched[index], tried):
                    matched[index] = lic
                    return True
        return False

    return next((lic for lic in mirrored if not match(lic, set())), None)


def capabilities(
    licenses: Iterable[License],
    installation_id: str,
    *,
    now: datetime | None = None,
    not_used: Iterable[str] = (),
) -> Capabilities:
    """Decide what the server ``installation_id`` may do with these verified licenses at
    ``now`` (an aware time; by default the clock's). ``not_used``: why the server's other
    files did not verify, for the refusal on no license to say (DataFolder gives them).

    A primary or redundant (enterprise) server does everything; a mirrored secondary only
    serves thin-client boots, unless it holds a complete duplicate of each license it is the
    mirror of (see :func:`duplicates`; the license of a pair it is the primary or redundant
    server of is one like any other); a server on no license does nothing. Seats
    and features add up over the licenses bound to this server (a mirrored one too: on a
    failover its clients boot from the mirror), each license number once: of its
    files (a copy, an older issue) the newest counts, and only if it is bound to this server (a
    license moved to other servers counts no more by its older file). A license for other
    servers, one expired since it was verified (a server that runs for months asks again),
    and a file that does not count, is ignored with a reason.
    """
    if isinstance(not_used, str):
        raise TypeError("not_used is a list of reasons, not text")
    this = normalize_installation_id(installation_id)
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:  # refused whether or not a license is there to compare it with
        raise ValueError("now must carry a time zone")
    applying: dict[str, License] = {}  # by license number: the newest file
    ignored: list[tuple[License, Reason]] = []
    for lic in licenses:
        other = applying.get(lic.license_number)
        if other is not None:
            older, lic = (other, lic) if lic.supersedes(other) else (lic, other)
            what = "a copy of" if older.serial == lic.serial else "replaced by"
            ignored.append(
                (
                    older,
                    Reason(
                        f"{what} the file {lic.serial} of the same license", AlreadyReplaced.code
                    ),
                )
            )
        applying[lic.license_number] = lic
    # Then the servers, of the newest file only: a license moved to other servers does not
    # count here by its older file.
    for number, lic in list(applying.items()):
        if lic.server(this) is None:
            ids = " and ".join(lic.installation_ids)
            ignored.append(
                (lic, Reason(f"issued for {ids}, not for this server", NotForThisServer.code))
            )
            del applying[number]
    # Then the dates, of the newest file only: an older issue of a license whose newest file
    # expired does not count again.
    for number, lic in list(applying.items()):
        problem = date_problem(lic, now)
        if problem is not None:
            ignored.append((lic, Reason(problem[1], problem[0].code)))
            del applying[number]
    roles = {lic.server(this).role for lic in applying.values()}
    full = [lic for lic in applying.values() if lic.server(this).role is not Role.MIRROR]
    mirroring = [lic for lic in applying.values() if lic.server(this).role is Role.MIRROR]
    # Each license it mirrors needs a duplicate of its own, whatever the kind of that license
    # (a standard one, the license of a pair it is the primary or redundant server of): two
    # mirrored licenses binding one pair in opposite roles, or a 1-seat enterprise license
    # beside a 25-seat mirrored one, make no fully redundant secondary.
    mirrored = _without_duplicate(mirroring, full)
    if full and mirrored is None:
        role = Role.PRIMARY if Role.PRIMARY in roles else Role.REDUNDANT
        refusals: dict[Action, str] = {}
    elif mirrored is not None:
        role = Role.MIRROR
        primary = mirrored.servers[0].installation_id
        features = ", ".join(sorted(mirrored.features)) or "none"
        short = (
            " A fully redundant server needs a complete duplicate of each license it is the "
            f"mirror of: none here duplicates license {mirrored.license_number} "
            f"({mirrored.product} {mirrored.edition}, {mirrored.seats} seats, features "
            f"{features})."
            if full
            else ""
        )
        refusals = {
            Action.RUN_CONSOLE: (
                "This is a mirrored ThinManager Server: the ThinManager interface runs only on "
                f"the primary ThinManager Server ({primary}).{short}"
            ),
            Action.CHANGE_CONFIG: (
                "The configuration cannot be changed on a mirrored ThinManager Server; change it "
                f"on the primary ThinManager Server ({primary}).{short}"
            ),
            Action.SHOW_THINSERVER_DATA: THINSERVER_DATA_REFUSED,
        }
    else:
        role = None
        reason = f"No valid license for this ThinManager Server (Installation ID {this})."
        counted = [f"license {lic.license_number}, {why}" for lic, why in ignored]
        not_used = list(not_used)
        if not (counted or not_used):
            reason += " Activate a license for this Installation ID and import the license file."
        # Else why the files it holds do not count (the clock, a missing keyring), not to
        # activate what is activated: the first few of each kind, so that a folder of many
        # files makes no message of pages (``ignored`` has all).
        if counted:
            more = len(counted) - REASONS_SHOWN
            reason += f" Not counted: {'; '.join(counted[:REASONS_SHOWN])}"
            reason += f"; and {more} more." if more > 0 else "."
        reason += "".join(f" Not used: {why}" for why in not_used[:REASONS_SHOWN])
        if len(not_used) > REASONS_SHOWN:
            reason += f" Not used: {len(not_used) - REASONS_SHOWN} more."
        refusals = {action: reason for action in Action}

    return Capabilities(
        installation_id=this,
        role=role,
        seats=sum(lic.seats for lic in applying.values()),
        features=frozenset(f for lic in applying.values() for f in lic.features),
        licenses=tuple(applying.values()),
        ignored=tuple(ignored),
        refusals=refusals,
    )
