"""The HTML report opened in headless Chromium: the screenshot shows the
timeline chart (bars in the verdicts' colours). Skipped (77) without Chromium."""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import capture_fixture

RSTTRACE = os.environ["RSTTRACE"]
COLOURS = {"tcp-wrappers": (0xd9, 0x5f, 0x02), "firewall": (0x1b, 0x9e, 0x77), "sshd": (0x75, 0x70, 0xb3)}


def read_png(path):
    """(width, height, rows of (r, g, b)) for 8-bit RGB/RGBA PNGs, standard library only."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), f"unsupported PNG (depth {depth}, colour type {colour})"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        filter_type = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + a) & 0xff
            elif filter_type == 2:
                line[i] = (line[i] + b) & 0xff
            elif filter_type == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif filter_type == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append([tuple(line[x * channels:x * channels + 3]) for x in range(width)])
        previous = line
    return width, height, rows


def main():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("SKIP: no chromium (Debian package chromium)")
        return 77
    with tempfile.TemporaryDirectory(prefix="rsttrace-chromium-") as directory:
        paths = capture_fixture.write(directory)
        page = os.path.join(directory, "report.html")
        subprocess.run([RSTTRACE, "report", *paths, "--html", page], check=True, capture_output=True)
        shot = os.path.join(directory, "report.png")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={directory}/profile", "--window-size=1100,900",
                        f"--screenshot={shot}", "file://" + page],
                       check=True, capture_output=True, timeout=120)
        if os.environ.get("RSTTRACE_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["RSTTRACE_KEEP_SCREENSHOT"])
        width, height, rows = read_png(shot)
        counts = {name: 0 for name in COLOURS}
        for row in rows:
            for pixel in row:
                for name, colour in COLOURS.items():
                    if all(abs(p - q) <= 6 for p, q in zip(pixel, colour)):
                        counts[name] += 1
        print(f"screenshot {width}x{height}; pixels per verdict colour: {counts}")
        for name, count in counts.items():
            # A bar is at least a few pixels wide and tall; a legend swatch alone is 144.
            assert count > 200, f"the chart shows no {name} bars ({count} pixels)"
        # Wrappers: 5 events in 4 minutes; sshd 1: more wrapper ink than sshd ink.
        assert counts["tcp-wrappers"] > counts["sshd"], counts

        # The tables as the browser built them: each verdict's meaning and fix, the latest lines.
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                              f"--user-data-dir={directory}/profile", "--dump-dom", "file://" + page],
                             check=True, capture_output=True, text=True, timeout=120).stdout
        assert "What each verdict means, and the fix" in dom, dom[:2000]
        assert "fail2ban-client set recidive unbanip 127.0.0.4" in dom
        assert dom.count('id="latest"') == 1 and "<img" not in dom and "onerror" in dom  # shown as text, never a tag

        # A 3-second capture: a bar per second, the empty second between them (it was one full-width bar).
        short_page = os.path.join(directory, "short.html")
        subprocess.run([RSTTRACE, "report", *capture_fixture.write_short(directory), "--html", short_page],
                       check=True, capture_output=True)
        short_shot = os.path.join(directory, "short.png")
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={directory}/profile", "--window-size=1100,900",
                        f"--screenshot={short_shot}", "file://" + short_page],
                       check=True, capture_output=True, timeout=120)
        width, height, rows = read_png(short_shot)
        colour = COLOURS["tcp-wrappers"]
        inked = [x for x in range(width)
                 if sum(all(abs(p - q) <= 6 for p, q in zip(rows[y][x], colour)) for y in range(height)) > 20]
        runs = []
        for x in inked:  # contiguous columns of bar ink (the 12-pixel legend swatch is too short to count)
            if runs and x == runs[-1][1] + 1:
                runs[-1][1] = x
            else:
                runs.append([x, x])
        print(f"short capture: bar columns {runs}")
        assert len(runs) == 2, f"expected two bars (seconds 0 and 2), got {runs}"
        assert all(end - start < width / 2 for start, end in runs), runs
    return 0


if __name__ == "__main__":
    sys.exit(main())
