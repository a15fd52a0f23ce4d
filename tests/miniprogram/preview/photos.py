"""Photo-like JPEGs for the page previews: skies, hills, sea, city lights, flowers.

Drawn with Pillow from a seed (no files shipped), softened and grained like a phone
photo, so a gallery of them looks like a gallery and an upload of one takes long
enough for its progress to be seen.

    python photos.py '[{"path": "/tmp/a.jpg", "scene": "sunset", "seed": 1}, ...]'
"""

import colorsys
import itertools
import json
import math
import random
import sys

from PIL import Image, ImageChops, ImageDraw, ImageFilter


def mix(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))


def hsv(h, s, v):
    return tuple(round(c * 255) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def gradient(draw, box, stops):
    """Vertical gradient through (position, colour) stops inside box."""
    x0, y0, x1, y1 = box
    for y in range(y0, y1):
        t = (y - y0) / max(1, y1 - y0 - 1)
        for (p0, c0), (p1, c1) in itertools.pairwise(stops):
            if p0 <= t <= p1:
                draw.line([(x0, y), (x1, y)], fill=mix(c0, c1, (t - p0) / max(1e-6, p1 - p0)))
                break


def ridge(rnd, w, base, amp, steps=24):
    points = []
    phase = rnd.random() * 10
    for i in range(steps + 1):
        x = w * i / steps
        y = base - amp * (0.55 + 0.45 * math.sin(phase + i * 0.7)) * (0.6 + 0.4 * rnd.random())
        points.append((x, y))
    return points


def sunset(img, rnd):
    w, h = img.size
    d = ImageDraw.Draw(img)
    hue = rnd.uniform(-0.03, 0.04)
    horizon = int(h * rnd.uniform(0.56, 0.64))
    gradient(
        d,
        (0, 0, w, horizon),
        [
            (0, hsv(0.72 + hue, 0.55, 0.45)),
            (0.55, hsv(0.97 + hue, 0.55, 0.95)),
            (1, hsv(0.09 + hue, 0.75, 1.0)),
        ],
    )
    sun_x, r = w * rnd.uniform(0.3, 0.7), h * 0.09
    d.ellipse(
        [sun_x - r, horizon - r * 1.3, sun_x + r, horizon + r * 0.7],
        fill=hsv(0.12 + hue, 0.35, 1.0),
    )
    gradient(
        d, (0, horizon, w, h), [(0, hsv(0.05 + hue, 0.6, 0.75)), (1, hsv(0.7 + hue, 0.6, 0.25))]
    )
    for i in range(40):
        y = horizon + (h - horizon) * (i / 40) ** 1.6
        half = r * (1.2 - i / 50) * rnd.uniform(0.5, 1.2)
        d.line(
            [(sun_x - half, y), (sun_x + half, y)],
            fill=hsv(0.1 + hue, 0.45, 1.0),
            width=max(2, h // 300),
        )


def mountains(img, rnd):
    w, h = img.size
    d = ImageDraw.Draw(img)
    hue = rnd.uniform(-0.04, 0.04)
    gradient(
        d,
        (0, 0, w, h),
        [(0, hsv(0.58 + hue, 0.55, 0.85)), (0.6, hsv(0.56 + hue, 0.2, 0.98)), (1, (235, 240, 240))],
    )
    for layer in range(4):
        base = h * (0.55 + layer * 0.13)
        pts = ridge(rnd, w, base, h * (0.35 - layer * 0.06), steps=10 + layer * 4)
        colour = hsv(0.6 - layer * 0.07 + hue, 0.25 + layer * 0.12, 0.75 - layer * 0.14)
        d.polygon([(0, h), *pts, (w, h)], fill=colour)


def meadow(img, rnd):
    w, h = img.size
    d = ImageDraw.Draw(img)
    hue = rnd.uniform(-0.05, 0.05)
    gradient(d, (0, 0, w, h), [(0, hsv(0.57, 0.5, 0.95)), (1, hsv(0.55, 0.15, 1.0))])
    for _ in range(5):
        cx, cy, r = rnd.uniform(0, w), rnd.uniform(0.05, 0.35) * h, rnd.uniform(0.05, 0.1) * w
        for k in range(4):
            d.ellipse(
                [cx - r + k * r * 0.5, cy - r * 0.5, cx + r * 0.6 + k * r * 0.5, cy + r * 0.4],
                fill=(255, 255, 255),
            )
    for layer in range(3):
        top = h * (0.55 + layer * 0.12)
        d.ellipse(
            [
                -w * 0.3 + layer * w * 0.35 * rnd.random(),
                top,
                w * (1.1 + 0.2 * layer),
                top + h * 0.8,
            ],
            fill=hsv(0.26 + hue - layer * 0.02, 0.55 + layer * 0.1, 0.8 - layer * 0.12),
        )
    tx, ty = w * rnd.uniform(0.2, 0.8), h * 0.62
    d.rectangle([tx - w * 0.012, ty, tx + w * 0.012, ty + h * 0.14], fill=(90, 60, 40))
    d.ellipse(
        [tx - w * 0.08, ty - h * 0.16, tx + w * 0.08, ty + h * 0.04], fill=hsv(0.3 + hue, 0.7, 0.45)
    )
    for _ in range(160):
        x, y = rnd.uniform(0, w), rnd.uniform(0.72, 1) * h
        d.ellipse(
            [x - 5, y - 5, x + 5, y + 5], fill=hsv(rnd.choice([0.0, 0.13, 0.8, 0.95]), 0.6, 1.0)
        )


def city(img, rnd):
    w, h = img.size
    d = ImageDraw.Draw(img)
    gradient(d, (0, 0, w, h), [(0, (10, 14, 40)), (0.7, (40, 40, 90)), (1, (90, 60, 110))])
    for _ in range(140):
        x, y = rnd.uniform(0, w), rnd.uniform(0, 0.55) * h
        s = rnd.choice([1, 1, 2, 3])
        d.ellipse([x - s, y - s, x + s, y + s], fill=(255, 255, 240))
    mx, my, mr = w * rnd.uniform(0.6, 0.85), h * 0.18, h * 0.07
    d.ellipse([mx - mr, my - mr, mx + mr, my + mr], fill=(250, 245, 220))
    x = 0
    while x < w:
        bw, bh = rnd.uniform(0.05, 0.12) * w, rnd.uniform(0.2, 0.55) * h
        d.rectangle([x, h - bh, x + bw, h], fill=(20 + rnd.randint(0, 15), 22, 45))
        for wy in range(int(h - bh + 12), h - 10, 22):
            for wx in range(int(x + 8), int(x + bw - 8), 18):
                if rnd.random() < 0.45:
                    d.rectangle([wx, wy, wx + 8, wy + 11], fill=(255, 214, 120))
        x += bw + rnd.uniform(2, 10)


def flowers(img, rnd):
    w, h = img.size
    d = ImageDraw.Draw(img)
    hue = rnd.random()
    gradient(d, (0, 0, w, h), [(0, hsv(0.3, 0.5, 0.45)), (1, hsv(0.25, 0.6, 0.25))])
    for _ in range(30):
        x, y, r = rnd.uniform(0, w), rnd.uniform(0, h), rnd.uniform(0.02, 0.07) * w
        d.ellipse([x - r, y - r, x + r, y + r], fill=hsv(0.22, 0.3, rnd.uniform(0.5, 0.7)))
    img.paste(img.filter(ImageFilter.GaussianBlur(18)))
    d = ImageDraw.Draw(img)
    for _ in range(rnd.randint(3, 6)):
        cx, cy, r = (
            rnd.uniform(0.15, 0.85) * w,
            rnd.uniform(0.2, 0.85) * h,
            rnd.uniform(0.07, 0.14) * w,
        )
        colour = hsv(hue + rnd.uniform(-0.05, 0.05), rnd.uniform(0.45, 0.8), 0.98)
        for k in range(8):
            a = k * math.pi / 4
            px, py = cx + math.cos(a) * r * 0.6, cy + math.sin(a) * r * 0.6
            d.ellipse(
                [px - r * 0.45, py - r * 0.45, px + r * 0.45, py + r * 0.45],
                fill=mix(colour, (255, 255, 255), 0.1 * (k % 2)),
            )
        d.ellipse([cx - r * 0.3, cy - r * 0.3, cx + r * 0.3, cy + r * 0.3], fill=(250, 200, 40))


def beach(img, rnd):
    w, h = img.size
    d = ImageDraw.Draw(img)
    horizon, shore = int(h * 0.45), int(h * rnd.uniform(0.66, 0.72))
    gradient(d, (0, 0, w, horizon), [(0, hsv(0.58, 0.6, 0.95)), (1, hsv(0.55, 0.2, 1.0))])
    gradient(d, (0, horizon, w, shore), [(0, hsv(0.53, 0.8, 0.7)), (1, hsv(0.48, 0.5, 0.9))])
    gradient(d, (0, shore, w, h), [(0, (240, 222, 180)), (1, (220, 195, 150))])
    for i in range(3):
        y = shore - i * h * 0.012
        d.line([(0, y), (w, y + rnd.uniform(-8, 8))], fill=(250, 252, 252), width=6)
    ux, uy = w * rnd.uniform(0.25, 0.75), h * 0.7
    d.line([(ux, uy), (ux + w * 0.02, h * 0.92)], fill=(120, 90, 60), width=10)
    d.pieslice(
        [ux - w * 0.14, uy - h * 0.1, ux + w * 0.14, uy + h * 0.1],
        180,
        360,
        fill=hsv(rnd.random(), 0.7, 0.95),
    )


def lake(img, rnd):
    w, h = img.size
    d = ImageDraw.Draw(img)
    mid = int(h * 0.55)
    gradient(d, (0, 0, w, mid), [(0, hsv(0.58, 0.35, 0.9)), (1, hsv(0.1, 0.2, 1.0))])
    trees = []
    x = -20.0
    while x < w:
        th = rnd.uniform(0.12, 0.3) * h
        tw = th * 0.35
        trees.append((x, th, tw))
        x += tw * rnd.uniform(0.5, 0.9)
    for x, th, tw in trees:
        d.polygon(
            [(x - tw / 2, mid), (x, mid - th), (x + tw / 2, mid)],
            fill=hsv(0.38, 0.6, rnd.uniform(0.25, 0.4)),
        )
    reflection = img.crop((0, 0, w, mid)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    reflection = reflection.filter(ImageFilter.GaussianBlur(6)).resize((w, h - mid))
    tint = Image.new("RGB", reflection.size, (30, 70, 90))
    img.paste(Image.blend(reflection, tint, 0.35), (0, mid))
    d = ImageDraw.Draw(img)
    for _ in range(25):
        y, x = rnd.uniform(mid, h), rnd.uniform(0, w)
        d.line([(x, y), (x + rnd.uniform(40, 160), y)], fill=(200, 220, 225), width=2)


def autumn(img, rnd):
    w, h = img.size
    d = ImageDraw.Draw(img)
    gradient(d, (0, 0, w, h), [(0, (250, 226, 170)), (1, (214, 120, 60))])
    for _ in range(9):
        x = rnd.uniform(0, w)
        d.rectangle([x - w * 0.01, h * 0.2, x + w * 0.01, h], fill=(70, 45, 35))
    for _ in range(500):
        x, y, r = rnd.uniform(0, w), rnd.uniform(0, h), rnd.uniform(8, 26)
        d.ellipse(
            [x - r, y - r * 0.6, x + r, y + r * 0.6],
            fill=hsv(rnd.uniform(0.0, 0.11), rnd.uniform(0.6, 0.95), rnd.uniform(0.7, 1.0)),
        )


SCENES = {f.__name__: f for f in (sunset, mountains, meadow, city, flowers, beach, lake, autumn)}


def make(spec):
    rnd = random.Random(spec["seed"])
    w, h = spec.get("width", 1600), spec.get("height", 1200)
    img = Image.new("RGB", (w, h))
    SCENES[spec["scene"]](img, rnd)
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    # Sensor grain: a phone photo's size, and every file unique.
    noise = Image.effect_noise((w, h), spec.get("grain", 10)).convert("RGB")
    img = ImageChops.add(img, noise, 1.0, -128)
    # What a phone camera writes: make, model, the moment taken.
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15"
    exif.get_ifd(0x8769)[0x9003] = spec.get("taken", "2024:06:01 09:00:00")
    img.save(spec["path"], "JPEG", quality=spec.get("quality", 90), exif=exif)


if __name__ == "__main__":
    for spec in json.loads(sys.argv[1]):
        make(spec)
