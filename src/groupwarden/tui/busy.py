"""A one-line spinner that shows while a worker waits (on a lock, a slow database, the network)."""

from __future__ import annotations

from textual.timer import Timer
from textual.widgets import Static

from groupwarden.tui.text import plain

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Busy(Static):
    """Hidden until start(); takes no room while hidden."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, classes="busy")
        self.text = ""
        self.frame = 0
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        self.display = False

    @property
    def active(self) -> bool:
        return self._timer is not None

    def start(self, text: str) -> None:
        self.text, self.frame = text, 0
        self.display = True
        self._draw()
        if self._timer is None:
            self._timer = self.set_interval(0.1, self._spin)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.display = False

    def _spin(self) -> None:
        self.frame = (self.frame + 1) % len(FRAMES)
        self._draw()

    def _draw(self) -> None:
        self.update(plain(f"{FRAMES[self.frame]} {self.text}"))
