"""A clean Debian 12 root for installing the package into, cached under
/var/cache/rsttrace-lab like the lab's roots: debootstrap minbase bookworm from
this machine's configured mirror, plus the packages the test names (the .deb's
runtime dependencies, man-db, systemd). Root-owned, built in a temporary
directory beside it and renamed into place, under a lock: concurrent tests
never see half a root. The cache is read-only to its users (they mount an
overlay on it)."""

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

CACHE = "/var/cache/rsttrace-lab"


def configured_mirror():
    """The Debian mirror apt uses on this machine (deb822 or one-line sources)."""
    texts = []
    for path in ["/etc/apt/sources.list"] + sorted(
            os.path.join("/etc/apt/sources.list.d", name) for name in os.listdir("/etc/apt/sources.list.d")
            if os.path.isdir("/etc/apt/sources.list.d")):
        if os.path.isfile(path):
            with open(path) as f:
                texts.append(f.read())
    for text in texts:
        for line in text.splitlines():
            match = re.match(r"\s*URIs:\s*(\S+)", line) or re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if match and "security" not in match.group(1):
                return match.group(1)
    return "http://deb.debian.org/debian"


def root_for(packages):
    """The cached root holding minbase bookworm and `packages`; built if missing."""
    packages = sorted(set(packages))
    key = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:12]
    root = os.path.join(CACHE, f"debian12-pkg-{key}")
    if os.path.isfile(os.path.join(root, "etc", "debian_version")):
        return root
    os.makedirs(CACHE, mode=0o700, exist_ok=True)
    with open(os.path.join(CACHE, f"debian12-pkg-{key}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test may be building the same root
        if os.path.isfile(os.path.join(root, "etc", "debian_version")):
            return root
        partial = tempfile.mkdtemp(prefix=f"debian12-pkg-{key}.partial-", dir=CACHE)
        try:
            os.chmod(partial, 0o755)
            log = os.path.join(CACHE, f"debian12-pkg-{key}.log")
            with open(log, "w") as out:
                subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
                                "bookworm", partial, configured_mirror()],
                               check=True, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
            os.rename(partial, root)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return root


if __name__ == "__main__":
    import sys
    print(root_for(sys.argv[1:]))
