"""Support staff's tools: find a license by number, customer, serial or either Installation ID,
see its history, revoke, reissue and correct. Every action goes through licensing.services
(audited) and is permission-checked."""

from . import accounts, activations, licenses, organizations, records  # noqa: F401 - they register the admins
