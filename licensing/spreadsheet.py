"""CSV files as spreadsheet programs open them: UTF-8 (with its mark), and text that would
start a formula kept as text."""

import csv
from itertools import chain

from django.http import StreamingHttpResponse

BOM = "\ufeff"  # spreadsheet programs then read the file as UTF-8


def cell(value) -> str:
    """A value as a spreadsheet shows it: text that would start a formula stays text."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Line:
    """What csv.writer writes to: each row handed back as its line."""

    def write(self, line: str) -> str:
        return line


def streamed(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    """A download of ``rows`` (each a list of values), written as they are read: a long list
    is never held whole."""
    writer = csv.writer(_Line())
    lines = (writer.writerow([cell(value) for value in row]) for row in rows)
    response = StreamingHttpResponse(
        chain([BOM + writer.writerow(header)], lines), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
