"""Dates and times in the admin (and any template): ISO-like, to the second, with the zone.

Django localizes every date it shows, so these override the locale's formats rather than the
DATETIME_FORMAT setting, which is ignored. Input formats stay Django's.
"""

DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
