"""Draw a few small demo images (no downloads, nothing committed)."""

import sys
from pathlib import Path

from PIL import Image, ImageDraw

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/demo-images")
out.mkdir(parents=True, exist_ok=True)
specs = {"red_square": ((220, 30, 30), "rectangle"), "blue_circle": ((30, 60, 220), "ellipse"), "green_bar": ((30, 160, 60), "bar")}
for name, (colour, shape) in specs.items():
    img = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(img)
    if shape == "rectangle":
        draw.rectangle((80, 40, 240, 200), fill=colour)
    elif shape == "ellipse":
        draw.ellipse((80, 40, 240, 200), fill=colour)
    else:
        draw.rectangle((20, 100, 300, 140), fill=colour)
    img.save(out / f"{name}.png")
print(out)
