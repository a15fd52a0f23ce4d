"""Draw the mini-program's tab bar icons (81x81 PNG, grey and WeChat green).

.venv/bin/python scripts/icons.py    # writes miniprogram/images/tab-*.png
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 81
SCALE = 4  # drawn large, then scaled down: smooth edges
COLORS = {"": (122, 126, 131, 255), "-active": (7, 193, 96, 255)}
OUT = Path(__file__).resolve().parents[1] / "miniprogram" / "images"

Draw = Callable[[ImageDraw.ImageDraw, tuple[int, int, int, int], int], None]


def backup(d: ImageDraw.ImageDraw, color: tuple[int, int, int, int], w: int) -> None:
    # A cloud with an arrow going up into it.
    d.arc((60, 110, 180, 230), 90, 270, fill=color, width=w)
    d.arc((100, 60, 240, 200), 180, 350, fill=color, width=w)
    d.arc((190, 100, 280, 230), 270, 90, fill=color, width=w)
    d.line((120, 228, 130, 228), fill=color, width=w)
    d.line((190, 228, 236, 228), fill=color, width=w)
    d.line((160, 270, 160, 160), fill=color, width=w)
    d.line((120, 200, 160, 158, 200, 200), fill=color, width=w, joint="curve")


def gallery(d: ImageDraw.ImageDraw, color: tuple[int, int, int, int], w: int) -> None:
    # A picture: frame, sun, two hills.
    d.rounded_rectangle((44, 64, 280, 256), radius=24, outline=color, width=w)
    d.ellipse((200, 100, 240, 140), outline=color, width=w)
    d.line((60, 236, 130, 160, 190, 222, 220, 192, 264, 236), fill=color, width=w, joint="curve")


def settings(d: ImageDraw.ImageDraw, color: tuple[int, int, int, int], w: int) -> None:
    # A gear: eight teeth around a ring, a hole in the middle.
    cx = cy = 162
    for n in range(8):
        angle = n * math.pi / 4
        inner = (cx + 70 * math.cos(angle), cy + 70 * math.sin(angle))
        outer = (cx + 96 * math.cos(angle), cy + 96 * math.sin(angle))
        d.line((*inner, *outer), fill=color, width=w + 14)
    d.ellipse((cx - 78, cy - 78, cx + 78, cy + 78), outline=color, width=w)
    d.ellipse((cx - 30, cy - 30, cx + 30, cy + 30), outline=color, width=w)


ICONS: dict[str, Draw] = {"backup": backup, "gallery": gallery, "settings": settings}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, draw in ICONS.items():
        for suffix, color in COLORS.items():
            big = Image.new("RGBA", (SIZE * SCALE, SIZE * SCALE), (0, 0, 0, 0))
            draw(ImageDraw.Draw(big), color, 18)
            big.resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(OUT / f"tab-{name}{suffix}.png")


if __name__ == "__main__":
    main()
