"""`rsttrace --version` prints the version of CMakeLists.txt and the commit the
build was configured from: this tree's HEAD when it is a git checkout (CMake
reconfigures when HEAD moves), "unknown" otherwise."""

import os
import re
import subprocess
import sys

TREE = sys.argv[1]
RSTTRACE = os.environ["RSTTRACE"]


def main():
    out = subprocess.run([RSTTRACE, "--version"], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(TREE, "CMakeLists.txt")) as f:
        version = re.search(r"project\(rsttrace VERSION (\S+)", f.read()).group(1)
    head = subprocess.run(["git", "-C", TREE, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    toplevel = subprocess.run(["git", "-C", TREE, "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    in_git = head.returncode == 0 and os.path.realpath(toplevel.stdout.strip()) == os.path.realpath(TREE)
    expected = f"rsttrace {version} (git {head.stdout.strip() if in_git else 'unknown'})\n"
    assert out == expected, f"--version printed {out!r}, expected {expected!r}"
    print(out.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
