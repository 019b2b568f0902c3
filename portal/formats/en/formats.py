"""One way to write dates and times on every page, the admin's included: 2026-11-28 20:25,
as the license pages, the license file and support on the telephone say them."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
TIME_FORMAT = "H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
