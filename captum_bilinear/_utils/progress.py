"""An optional progress bar over the passes of an attribution (Captum's ``show_progress``)."""

from typing import Any, Optional


class Progress:
    """Counts rows (interpolated activations) pushed through the layers above the
    attributed ones; the total grows as each example's plan becomes known."""

    def __init__(self, enabled: bool, description: str) -> None:
        self.bar: Optional[Any] = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=0, desc=description, unit="rows")

    def expect(self, rows: int) -> None:
        if self.bar is not None:
            self.bar.total += rows
            self.bar.refresh()

    def advance(self, rows: int) -> None:
        if self.bar is not None:
            self.bar.update(rows)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


#: A progress that shows nothing.
SILENT = Progress(False, "")
