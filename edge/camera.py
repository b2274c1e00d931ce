"""Where the controller gets each parcel's image: a folder the line camera uploads into."""
import asyncio
from pathlib import Path

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
POLL_S = 0.001


class FolderImages:
    """Images named `<tracking number>.<ext>`, written atomically (upload, then rename)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def _find(self, tracking: int) -> Path | None:
        for ext in IMAGE_EXTS:
            p = self.folder / f"{tracking}{ext}"
            if p.exists():
                return p
        return None

    async def wait(self, tracking: int, timeout_s: float) -> Path | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (p := self._find(tracking)) is None:
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(POLL_S)
        return p
