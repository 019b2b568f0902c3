"""Where the activation wizard keeps its state between its pages."""

from __future__ import annotations

import copy
import re
import secrets

from formtools.wizard.storage.base import BaseStorage


class WizardSessionStorage(BaseStorage):
    """formtools' wizard state, kept in the server-side session, one state per activation in
    progress. Each page of the wizard carries its activation's ``run`` (a random id), so two
    browser tabs activating two licenses do not mix: a Mirrored Installation ID typed in one
    is never bound to the other's license. Each sending of step 1 starts a new run, so a page
    of step 2 belongs to the License Number and Installation ID it shows: one left behind by
    Back, with step 1 sent again since, is refused as expired. The session is saved only when
    a state changed (formtools' own session storage saves it on every request)."""

    RUN_FIELD = "wizard_run"
    MAX_RUNS = 10  # activations kept in one session (unfinished or finished); oldest dropped

    def __init__(self, prefix, request=None, file_storage=None):
        super().__init__(f"{prefix}_runs", request, file_storage)
        # A page's form sends its run; a page asked for again names it in its address.
        run = (request.POST if request.method == "POST" else request.GET).get(self.RUN_FIELD, "")
        self.run = self._loaded_run = (
            run if re.fullmatch(r"[0-9a-f]{16}", run) else secrets.token_hex(8)
        )
        self.init_data()
        self._empty = copy.deepcopy(self._state)
        self._loaded = request.session.get(self.prefix, {}).get(self.run)
        # A two-step activation, once finished, leaves its license number and servers' IDs, so
        # that its step 2 sent again as it was (the browser's Back) leads to that license, and
        # sent with another ID, to its step 1 filled in again.
        self.finished = (self._loaded or {}).get("finished")
        self.finished_now = None
        if self.finished:
            self._loaded = None
        elif self._loaded is not None:
            self._state = copy.deepcopy(self._loaded)

    def new_run(self) -> None:
        """Go on under a new run id (step 1 was sent); the old one is forgotten."""
        self.run = secrets.token_hex(8)

    def finish(self, activation) -> None:
        """Remember the activation this run ended with (kept only for a two-step one)."""
        self.finished_now = {
            "number": activation.license.number,
            "primary": activation.installation_id,
            "secondary": activation.mirrored_installation_id,
        }

    @property
    def kept(self) -> bool:
        """Whether this run's state is kept in the session once the response is sent: a page
        of it can be asked for again (see ActivateLicenseView.get)."""
        return self._state != self._empty

    @property
    def is_new(self) -> bool:
        """No state was kept for this run: a fresh start, or an expired or finished one."""
        return self._loaded is None

    def _get_data(self):
        return self._state

    def _set_data(self, value):
        self._state = value

    data = property(_get_data, _set_data)

    def update_response(self, response):
        super().update_response(response)
        unchanged = self._state == (self._empty if self.is_new else self._loaded)
        if unchanged and (self.is_new or self.run == self._loaded_run):
            return
        runs = self.request.session.get(self.prefix, {})
        runs.pop(self._loaded_run, None)
        if self._state != self._empty:
            runs[self.run] = self._state  # the most recent last
        elif self.finished_now:
            runs[self.run] = {"finished": self.finished_now}
        for old in list(runs)[: -self.MAX_RUNS]:
            del runs[old]
        self.request.session[self.prefix] = runs
