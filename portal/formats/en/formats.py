"""One way to write dates and times on every page, the admin's included: 2026-11-28 20:25 UTC,
as the license pages, the license file and support on the telephone say them, and typed the
same way (Django's American defaults would read 01/07/2031 as 7 January)."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = r"Y-m-d H:i \U\T\C"  # times are kept in UTC (TIME_ZONE): said so
TIME_FORMAT = "H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT

DATE_INPUT_FORMATS = ["%Y-%m-%d"]
TIME_INPUT_FORMATS = ["%H:%M", "%H:%M:%S"]
DATETIME_INPUT_FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]
