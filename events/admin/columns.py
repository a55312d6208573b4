"""The deliveries list's change list, which lets other apps' columns (registered through
events.extensions.add_delivery_columns) prepare their figures once per page."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.views.main import ChangeList

from .. import extensions


class ExtendedChangeList(ChangeList):
    """Lets other apps' columns prepare their figures once, for the rows on the page."""

    def get_results(self, request: Any) -> None:
        super().get_results(request)
        rows = list(self.result_list)
        for group in extensions.delivery_columns():
            if group.prepare is not None:
                group.prepare(rows)
