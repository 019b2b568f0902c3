"""The audit trail and the e-mail outbox: read-only records (support may send mail again)."""

from __future__ import annotations

import json
from datetime import UTC

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.core.exceptions import BadRequest, PermissionDenied
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone

from .. import services, spreadsheet
from ..models import AuditEvent, License, Organization, OutboxMessage
from ..templatetags.message_text import message_text
from ..throttle import client_ip, ip_text
from ..views import asked_from_elsewhere
from .common import (
    SupportList,
    action,
    actor,
    details,
    ip_address,
    object_repr,
    when,
)


class ActionFilter(admin.SimpleListFilter):
    """The actions recorded so far, in words."""

    title = "action"
    parameter_name = "action__exact"

    def lookups(self, request, model_admin):
        codes = AuditEvent.objects.order_by().values_list("action", flat=True).distinct()
        return [(code, AuditEvent.words(code)) for code in sorted(codes)]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class ChosenFilter(admin.SimpleListFilter):
    """A record's trail (its History), or an organization's licenses, listed in the sidebar
    only when chosen (the admin applies only a filter it lists), named there with Clear all
    filters beside it; a value that names none shows no records."""

    model = None

    def _chosen(self):
        value = self.value() or ""
        return self.model.objects.filter(
            pk=int(value) if value.isascii() and value.isdigit() else None
        )

    def lookups(self, request, model_admin):
        if self.value() is None:
            return []
        return [(self.value(), next(map(str, self._chosen()), f"no such {self.title}"))]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(**{f"{self.parameter_name}__in": self._chosen()})


class LicenseFilter(ChosenFilter):
    """A license's trail: the events of the license, its files and e-mails."""

    title = parameter_name = "license"
    model = License


class OrganizationFilter(ChosenFilter):
    """An organization's trail: the events of its licenses and of the organization itself
    (its edits, members, lifted pauses); in the list of licenses, its licenses (its page's
    Licenses)."""

    title = parameter_name = "organization"
    model = Organization


class ActorFilter(ChosenFilter):
    """A person's trail: what they did (an actor's name in the trail, an account's History)."""

    title = parameter_name = "actor"
    model = get_user_model()


EXPORTED = [
    "time (UTC)",
    "actor",
    "action",
    "license",
    "organization",
    "object",
    "details",
    "IP address",
]


@admin.register(AuditEvent)
class AuditEventAdmin(SupportList, admin.ModelAdmin):
    list_display = [when, actor, action, object_repr, details, ip_address]
    list_select_related = ["license"]  # it names the roles of the Installation IDs in details
    list_filter = [ActionFilter, LicenseFilter, OrganizationFilter, ActorFilter]
    search_fields = [
        "action",
        "object_repr",
        "license__number",
        # The event's own organization (its license's when it was recorded): through the
        # license, each organization found was read as every license of it, seconds a search.
        "organization__name",
        "actor_name",
        "details",  # an invited member's address, a reason, an address lifted
    ]
    show_full_result_count = False  # a count of the whole trail, on every search: not needed
    found_by_file = "license"
    readonly_fields = [when, actor, action, "license", object_repr, details, ip_address]
    fields = readonly_fields
    date_hierarchy = "created_at"  # "what happened on that day"

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        return [path("export/", export, name="licensing_auditevent_export"), *super().get_urls()]

    def export_view(self, request):
        """The trail as listed (filtered, searched) as a spreadsheet, with every column and
        the time in UTC to the microsecond: an auditor's copy, matched against other logs.
        Audited: it holds customers' addresses."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if asked_from_elsewhere(request):  # not downloaded (nor recorded) for another site
            listed = reverse("admin:licensing_auditevent_changelist")
            return redirect(f"{listed}?{request.GET.urlencode()}")
        try:
            events = self.get_changelist_instance(request).queryset
        except IncorrectLookupParameters:
            raise BadRequest("A wrong filter: nothing was exported.") from None
        recorded = services.audit(
            actor=request.user,
            action="export_trail",
            license=None,
            obj="audit trail",
            ip=client_ip(request),
            details={"filter": request.GET.urlencode()},
        )
        rows = (
            [
                event.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
                event.actor_name,
                event.action,
                event.license.number if event.license else "",
                event.organization.name if event.organization else "",
                event.object_repr,
                json.dumps(event.details, ensure_ascii=False, sort_keys=True),
                event.ip_address or "",
            ]
            # As it was when asked: not this export's own event, nor any after it.
            for event in events.filter(pk__lt=recorded.pk)
            .select_related("license", "organization")
            .iterator(2000)
        )
        day = timezone.now().strftime("%Y-%m-%d")
        return spreadsheet.streamed(f"audit-trail-{day}.csv", EXPORTED, rows)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if changelist.query and not any(key.startswith("created_at__") for key in request.GET):
            # The first and last day of what a search finds, and its years, would read it
            # twice more (seconds each on a long trail): not shown, unless a date is chosen.
            changelist.date_hierarchy = None
        return changelist

    def get_search_results(self, request, queryset, search_term):
        # An action is found by the words the list shows for it ("send again") too, and what
        # was done from an address by the address.
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = " ".join(search_term.lower().split())
        if not term:
            return found, duplicates
        codes = [code for code, words in AuditEvent.WORDS.items() if words.lower() == term]
        if codes:
            found = found | queryset.filter(action__in=codes)
        if address := ip_text(term):
            found = found | queryset.filter(ip_address=address)
        # The events found, read apart: PostgreSQL would read the first and last day shown
        # above the list along the index of dates, testing event after event for the words
        # (the whole trail, for a word found nowhere).
        return queryset.filter(pk__in=found.values("pk")), duplicates

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.display(description="recipients")
def recipients(message):
    return ", ".join(message.recipients)


@admin.display(description="sent to")
def sent_to(message):
    if message.delivered_to:
        return ", ".join(message.delivered_to)
    # Before the recipients were recorded one by one, a message was sent to all or none.
    return recipients(message) if message.status == OutboxMessage.Status.SENT else "nobody yet"


@admin.display(description="body")
def body(message):
    if message.secret:
        return "Not shown: it holds a link to choose a password (erased once sent)."
    return message.body


@admin.display(description="subject", ordering="subject")
def subject(message):
    return message_text(message.subject)  # a license number in it kept on one line


@admin.register(OutboxMessage)
class OutboxMessageAdmin(SupportList, admin.ModelAdmin):
    list_display = [
        "created_at",
        subject,
        recipients,
        "status",
        "last_error",  # why not sent: in view beside the status, on a laptop's screen too
        "attempts",
        "sent_at",
    ]
    list_filter = ["status"]
    # A maintenance reminder listing several licenses is found by each one's number too.
    search_fields = ["subject", "key", "license__number", "licenses__number", "recipients"]
    readonly_fields = [
        "key",
        "license",
        "organization",
        recipients,
        sent_to,
        "subject",
        body,
        "attachment_name",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "queued_at",
        "next_attempt_at",
        "sent_at",
    ]
    fields = readonly_fields  # the recipients as a list, not also as stored; no attachment
    actions = ["send_again"]

    def get_fields(self, request, obj=None):
        # A next attempt comes only for a message still to be sent (not a failed one).
        fields = super().get_fields(request, obj)
        if obj is not None and obj.status != OutboxMessage.Status.PENDING:
            fields = [f for f in fields if f != "next_attempt_at"]
        return fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # a message is what was sent: nothing in it is edited

    def has_delete_permission(self, request, obj=None):
        return False

    def has_send_again_permission(self, request):
        return request.user.has_perm("licensing.change_outboxmessage")

    def lookup_allowed(self, lookup, value, request=None):
        # A filter in the address (?body__startswith=...) would tell, one character at a
        # time, what a body holds: a password reset's link among them.
        if lookup.split("__")[0] in {"body", "attachment"}:
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.action(description="Send the selected messages again", permissions=["send_again"])
    def send_again(self, request, queryset):
        queued = 0
        for message in queryset.select_related("activation__license", "license"):
            why_not = services.send_again(
                message=message, actor=request.user, ip=client_ip(request)
            )
            if why_not:
                self.message_user(
                    request, f"“{message.subject}” is not sent again. {why_not}", messages.WARNING
                )
            else:
                queued += 1
        if queued:
            self.message_user(
                request,
                f"{queued} message(s) queued again: their status says in a moment whether they "
                "went out (reload the list).",
            )
