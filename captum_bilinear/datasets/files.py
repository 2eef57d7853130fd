"""Reading a dataset's files with errors that name the option, the file and what is wrong.

A malformed file -- JSON with a syntax error, text that is not UTF-8, a truncated XML
file, a list where an object belongs, a null where a caption belongs -- raises one
:class:`DatasetFileError` (a ``ValueError``) of the form ``NAME: PATH: WHERE: WHAT``, e.g.
``captions: ann/captions.json: annotations[17] (id 5003): "caption" is null, expected a
string``; the command line prints it as one line and exits with status 2.
"""

import json
import math
import os
import xml.etree.ElementTree as ElementTree
from typing import Any, List, Mapping, Optional, Tuple, Type, Union


class DatasetFileError(ValueError):
    """A dataset file that cannot be read as its format says; the message names the option
    (``name``), the file and the place in it."""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return type(value).__name__


class FileContext:
    """Where errors happen: the option's ``name`` and the file's ``path``.

    Example:
        >>> context = FileContext("captions", "captions.json")
        >>> context.error("annotations[3]", "no \\"caption\\"")
        DatasetFileError('captions: captions.json: annotations[3]: no "caption"')
    """

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = os.fspath(path)

    def error(self, where: str, what: str) -> DatasetFileError:
        place = f"{where}: " if where else ""
        return DatasetFileError(f"{self.name}: {self.path}: {place}{what}")

    def text(self) -> str:
        """The file as UTF-8 text (a byte-order mark allowed)."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            raise self.error("", f"cannot be read ({error.strerror or type(error).__name__})") from error
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise self.error("", f"not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
                                 "save it as UTF-8") from error

    def json(self) -> Any:
        """The file's JSON value."""
        text = self.text()
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise self.error("", f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from error

    def lines(self) -> List[str]:
        """The file's non-blank lines, stripped."""
        return [line.strip() for line in self.text().splitlines() if line.strip()]

    def xml(self) -> ElementTree.Element:
        """The root element of the file's XML."""
        text = self.text()
        try:
            return ElementTree.fromstring(text)
        except ElementTree.ParseError as error:
            raise self.error("", f"not well-formed XML ({error}); the file may be truncated or damaged") from error

    def field(self, entry: Any, key: str, where: str, expected: str, types: Union[Type, Tuple[Type, ...]],
              default: Any = ..., allow_none: bool = False) -> Any:
        """``entry[key]`` checked to be of ``types`` (never a bool unless asked for);
        ``default`` when absent (else an error), ``None`` allowed only with ``allow_none``."""
        if not isinstance(entry, Mapping):
            raise self.error(where, f"expected an object, got {_type_name(entry)}")
        if key not in entry:
            if default is not ...:
                return default
            raise self.error(where, f"has no {json.dumps(key)} ({expected})")
        value = entry[key]
        if value is None and allow_none:
            return None
        wants_bool = types is bool or (isinstance(types, tuple) and bool in types)
        if not isinstance(value, types) or (isinstance(value, bool) and not wants_bool):
            raise self.error(where, f"{json.dumps(key)} is {_type_name(value)}, expected {expected}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(where, f"{json.dumps(key)} is {value}, expected {expected}")
        return value

    def mapping(self, value: Any, where: str, expected: str) -> Mapping:
        if not isinstance(value, Mapping):
            raise self.error(where, f"expected {expected}, got {_type_name(value)}")
        return value

    def sequence(self, value: Any, where: str, expected: str) -> list:
        if not isinstance(value, list):
            raise self.error(where, f"expected {expected}, got {_type_name(value)}")
        return value

    def number(self, value: Any, where: str, what: str) -> float:
        """A finite number (an int or float, or a string of one, as XML gives them)."""
        if value is None:
            raise self.error(where, f"{what} is missing, expected a number")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise self.error(where, f"{what} is {_type_name(value)}, expected a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(where, f"{what} is {_type_name(value)}, expected a finite number")
        return float(value)


#: JSON ids: an int or a string (never a bool or a float).
ID_TYPES = (int, str)


def entry_label(entry: Any, index: int, key: str = "id") -> str:
    """``"[index]"`` with the entry's id, for errors: ``annotations[3] (id 5003)``."""
    label = f"[{index}]"
    if isinstance(entry, Mapping) and isinstance(entry.get(key), ID_TYPES) and not isinstance(entry.get(key), bool):
        label += f" ({key} {entry[key]})"
    return label


def optional_size(width: Any, height: Any) -> Optional[Tuple[int, int]]:
    """``(width, height)`` when both are positive ints, else None (a size a dataset
    records only to say in which frame its boxes are)."""
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        return int(width), int(height)
    return None
