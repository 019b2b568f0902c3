"""The license's form in the admin: features as a list, expiry as a date with an optional time."""

from __future__ import annotations

import re
from datetime import time

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import ValidationError

import tmslicense

from .. import services
from ..models import License, listed_features, validate_license_text
from .common import UnchangedSinceOpened

_SEPARATORS = re.compile(r'[\s,;\[\]"\uff0c\u3001\uff1b\u060c\u061b]+')

# Any license's file stays within tmslicense.MAX_FILE_SIZE (64 KiB) with its features taking
# this many characters, of up to 4 bytes each, written twice over in base64.
MAX_FEATURES_TEXT = 4000


class FeatureListField(forms.CharField):
    """Feature names typed as a list ("relevance, multimonitor"), kept as a JSON list of text
    as tmslicense writes them into the file."""

    # The features stored (set by the form): sent back as shown, they are kept as they are,
    # not read anew (a list stored before a separator was added would read otherwise).
    stored: list | None = None

    def prepare_value(self, value):
        return listed_features(value) if isinstance(value, list) else value

    def sent_as_shown(self, data, features) -> bool:
        return (data or "").strip() == self.prepare_value(features or [])

    def clean(self, value):
        if self.stored is not None and self.sent_as_shown(value, self.stored):
            return list(self.stored)
        return super().clean(value)

    def has_changed(self, initial, data):
        # Sent as shown, or shown in another order than stored: saved as it was, no change to
        # record (nor a list stored before a separator was added read anew).
        if self.sent_as_shown(data, initial):
            return False
        try:
            return sorted(initial or []) != sorted(self.to_python(data))
        except ValidationError:
            return True

    def to_python(self, value):
        # Brackets and quotes are separators too: the JSON list the admin used to ask for
        # ('["relevance"]') still means what it did; so are semicolons and the commas of other
        # scripts (full-width, ideographic, Arabic), as a list typed in them has them.
        names = [name for name in _SEPARATORS.split(super().to_python(value)) if name]
        for name in names:
            try:
                validate_license_text(name)
            except ValidationError as error:
                raise ValidationError(f"{name!r}: {error.message}", code=error.code) from None
        twice = sorted(set(tmslicense.case_variants(names)))
        if twice:
            # tmslicense refuses a file that lists a feature twice, in any case.
            raise ValidationError(
                "Listed twice: %(names)s. List each feature once.",
                code="duplicate",
                params={"names": ", ".join(twice)},
            )
        return names


# Said instead of "Enter a valid date.": the one way dates are read (portal/formats).
DATE_AS = "Enter a valid date, written as 2032-11-05."
TIME_AS = "Enter a valid time, written as 14:30."


class DateAndOptionalTimeWidget(AdminSplitDateTime):
    """Shows a time of 00:00 as an empty box, as it was entered: clearing the date then
    clears the expiry; a time with seconds with them (a page saved as it is keeps them)."""

    def decompress(self, value):
        date, clock = super().decompress(value)
        if clock == time(0, 0):
            return [date, None]
        return [date, clock and clock.strftime("%H:%M:%S" if clock.second else "%H:%M")]


class DateAndOptionalTimeField(forms.SplitDateTimeField):
    """A date, and a time that may be left empty: 00:00, the start of that day."""

    def __init__(self, **kwargs):
        super().__init__(
            require_all_fields=False,
            widget=DateAndOptionalTimeWidget,
            error_messages={
                "incomplete": "Enter the date too, or leave both empty.",
                "invalid_date": DATE_AS,
                "invalid_time": TIME_AS,
            },
            **kwargs,
        )
        self.fields[1].required = False
        # The admin's widget shows "Date:" and "Time:" as bare text: name each box.
        date, clock = self.widget.widgets
        date.attrs["aria-label"] = f"{self.label}: date"
        clock.attrs["aria-label"] = f"{self.label}: time (optional)"

    def compress(self, data_list):
        if data_list and data_list[0] and not data_list[1]:
            data_list = [data_list[0], time(0, 0)]
        return super().compress(data_list)


class LicenseForm(UnchangedSinceOpened):
    # Longer than the stored form: a number from an order is pasted in any form (spaces, lower
    # case, no dashes) and stored canonical. Fixed once the license is saved (read-only).
    number = forms.CharField(
        max_length=40,
        initial=tmslicense.new_license_number,
        widget=forms.TextInput(attrs={"size": 24, "class": "monospace"}),
        help_text="A new number is offered; one from an order may be pasted in any form.",
    )
    # At least one: said the same for 0 and -1 (the model's field alone would let the form
    # say "at least 0" first).
    seats = forms.IntegerField(min_value=1)
    features = FeatureListField(
        required=False,
        help_text="Feature names, separated by commas or spaces, e.g. relevance, multimonitor.",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    expires_at = DateAndOptionalTimeField(
        required=False,
        label="Expires at",
        help_text="Empty: never. A date alone expires at 00:00, the start of that day.",
    )
    reason = forms.CharField(
        required=False,
        max_length=300,
        label="Why",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Kept in the audit trail with the change; needed when the license becomes "
        "suspended, expired or active again.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "maintenance_end" in self.fields:
            self.fields["maintenance_end"].error_messages["invalid"] = DATE_AS
        if self.instance.pk is not None and "features" in self.fields:
            self.fields["features"].stored = self.instance.features

    def clean_features(self):
        if "features" not in self.changed_data:
            return self.instance.features  # as stored, however it would be read now
        features = self.cleaned_data["features"]
        length = sum(map(len, features))
        if length > MAX_FEATURES_TEXT:
            # The file would be larger than a server takes (tmslicense.MAX_FILE_SIZE).
            raise forms.ValidationError(
                f"The features take {length:,} characters; at most {MAX_FEATURES_TEXT:,}, "
                "so that their license file stays within what a ThinManager Server takes.",
                code="too_long",
            )
        return features

    def clean_number(self):
        try:
            return tmslicense.normalize_license_number(self.cleaned_data["number"])
        except tmslicense.InvalidLicenseNumber as error:
            raise forms.ValidationError(error.message, code=error.code) from None

    def clean_reason(self):
        try:
            return services.check_reason(self.cleaned_data["reason"], of=None)
        except services.ActivationError as error:
            raise forms.ValidationError(error.message, code="reason") from None

    def clean(self):
        cleaned = super().clean()
        changed = set(self.changed_data) - {"reason", "opened"}
        if self.instance.pk and cleaned.get("reason") and not changed:
            self.add_error(
                "reason",
                "Nothing else was changed: a reason is kept in the audit trail with the change "
                "it explains, so nothing was saved. Make the change with it.",
            )
        if not self.instance.pk or cleaned.get("reason") or self.has_error("reason"):
            return cleaned
        # What customers see (Active, Suspended, Expired) changes by the status or the expiry.
        before = self.instance
        after = License(
            status=cleaned.get("status", before.status),
            expires_at=cleaned.get("expires_at", before.expires_at),
        )
        becomes = after.state
        if becomes == before.state and after.is_expired() and not before.is_expired():
            becomes = "Expired"  # suspended still, and expired once the suspension is lifted
        if becomes != before.state:
            self.add_error(
                "reason",
                f"Say why the license becomes {becomes.lower()} (it is {before.state.lower()}): "
                "the reason is kept in the audit trail.",
            )
        return cleaned
