"""Make the README's screenshots: the demo organisation in the terminal UI, as SVG files.

Run from the repository root: `python assets/make_screenshots.py`. It starts the demo (a
local SCIM server on 127.0.0.1), drives the UI headless and writes assets/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "screenshots"
SIZE = (120, 34)


async def shoot(app: Any, name: str) -> None:
    app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
    print(f"wrote {OUT / name}.svg")


async def drive(app: Any) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(1.0)
        await shoot(app, "main")
        for key in ("3", "j", "j", "4"):
            await pilot.press(key)
            await pilot.pause(0.3)
        await pilot.press("e")
        await pilot.pause(0.8)
        await shoot(app, "effective-access")
        await pilot.press("g")
        await pilot.pause(0.8)
        await shoot(app, "grant-dialog")
        await pilot.press("escape")
        await pilot.pause(0.3)
        await pilot.press("a")
        await pilot.pause(1.0)
        await shoot(app, "audit")


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["XDG_DATA_HOME"] = home
        os.environ["XDG_CONFIG_HOME"] = home
        from groupwarden.demo import prepare_demo
        from groupwarden.tui.app import make_app

        demo = prepare_demo(None)
        try:
            app = make_app(demo.ctx, demo.settings, demo.source_config)
            OUT.mkdir(exist_ok=True)
            asyncio.run(drive(app))
        finally:
            demo.close()


if __name__ == "__main__":
    sys.exit(main())
