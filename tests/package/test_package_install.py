"""The .deb of scripts/build-deb, installed with dpkg -i into a clean Debian 12
root (tests/package/debian12_root.py: debootstrap minbase bookworm with the
package's runtime dependencies, man-db and systemd, cached, read-only: an
overlay takes the writes), in a private mount namespace with /proc and /sys
mounted. There `rsttrace --version`, `rsttrace check` and `man rsttrace` work,
the unit passes `systemd-analyze verify` and is enabled but not started, the
system user exists; `dpkg -r` removes the package's files and `dpkg --purge`
leaves the root's file list as it was before the install.
    test_package_install.py DEB_DIR    (as root; 77 when it cannot run here)"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import debian12_root  # noqa: E402

SKIP = 77
# What dpkg, sysusers and man-db keep as their own bookkeeping: they may be
# new after a purge (the user stays, as Debian keeps every package's user);
# /run/systemd/ is systemd-analyze's runtime state (a tmpfs on a booted system).
BOOKKEEPING = re.compile(r"^/(var/lib/dpkg/|var/log/|var/cache/(man|debconf|ldconfig)/|etc/(passwd|group|shadow|gshadow)-$"
                         r"|run/systemd/"
                         r"|var/lib/systemd/deb-systemd-helper-(enabled|masked)/?$|etc/ld\.so\.cache$|tmp/)")


def run(argv, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(argv, **kwargs)


def real_package(name):
    """`name`, or the package providing it when it is virtual (libspdlog1.10-fmt9): debootstrap wants real ones."""
    policy = run(["apt-cache", "policy", name]).stdout
    if re.search(r"Candidate: (?!\(none\))", policy):
        return name
    showpkg = run(["apt-cache", "showpkg", name]).stdout
    providers = showpkg.split("Reverse Provides:", 1)[-1].split()
    assert providers, f"no package provides {name}"
    return providers[0]


def deb_dependencies(deb):
    """Package names of the .deb's Depends (first alternative, no version, virtual ones resolved)."""
    depends = run(["dpkg-deb", "-f", deb, "Depends"], check=True).stdout
    return [real_package(re.split(r"[\s(:]", part.split("|")[0].strip())[0])
            for part in depends.split(",") if part.strip()]


def file_list(root):
    out = set()
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(directory, d))]
        for name in dirs + files:
            out.add("/" + os.path.relpath(os.path.join(directory, name), root))
    return out


def inside(root, deb, work):
    """In a private mount namespace: an overlay on the cached root (its writes in `work`), then the checks."""
    merged = os.path.join(work, "merged")
    for d in ("upper", "work", "merged"):
        os.mkdir(os.path.join(work, d))
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={root},upperdir={work}/upper,workdir={work}/work", merged], check=True)
    run(["mount", "-t", "proc", "proc", os.path.join(merged, "proc")], check=True)
    run(["mount", "-t", "sysfs", "sysfs", os.path.join(merged, "sys")], check=True)
    shutil.copy(deb, os.path.join(merged, "tmp", "rsttrace.deb"))

    def chroot(*argv, check=True, env=None):
        result = run(["chroot", merged] + list(argv),
                     env=dict({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}, **(env or {})))
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    before = file_list(merged)
    installed = chroot("dpkg", "-i", "/tmp/rsttrace.deb")
    print(installed.stdout.strip().splitlines()[-1] if installed.stdout.strip() else "dpkg -i: ok")
    package_files = [line for line in chroot("dpkg", "-L", "rsttrace").stdout.splitlines()
                     if line.startswith("/") and not os.path.isdir(merged + line)]
    for path in ("/usr/bin/rsttrace", "/lib/systemd/system/rsttrace.service", "/usr/lib/sysusers.d/rsttrace.conf",
                 "/usr/share/man/man1/rsttrace.1.gz", "/usr/share/doc/rsttrace/events.md",
                 "/usr/share/doc/rsttrace/attribution.md", "/usr/share/doc/rsttrace/copyright"):
        assert path in package_files, f"{path} not in the package: {package_files}"

    version = chroot("rsttrace", "--version").stdout.strip()
    assert re.fullmatch(r"rsttrace \d+\.\d+\.\d+ \(git [0-9a-f]{12}\)", version), f"--version: {version!r}"
    print("rsttrace --version:", version)
    check = chroot("rsttrace", "check", check=False)
    print(check.stdout)
    assert check.returncode == 0 and "rsttrace works" in check.stdout, f"rsttrace check: {check.stderr}"
    man = chroot("man", "rsttrace", env={"MANPAGER": "cat", "MANWIDTH": "100"})
    assert "RSTTRACE(1)" in man.stdout and "--host-label" in man.stdout.replace("‐", "-"), man.stdout[:500]
    assert not man.stderr.strip(), f"man rsttrace warned: {man.stderr}"
    print("man rsttrace: ok,", len(man.stdout.splitlines()), "lines")
    verify = chroot("systemd-analyze", "verify", "/lib/systemd/system/rsttrace.service", check=False)
    assert verify.returncode == 0, f"systemd-analyze verify: {verify.stdout}{verify.stderr}"
    print("systemd-analyze verify: ok")
    wants = os.path.join(merged, "etc/systemd/system/multi-user.target.wants/rsttrace.service")
    assert os.path.islink(wants), "the unit is not enabled"
    postinst = run(["dpkg-deb", "-I", deb, "postinst"], check=True).stdout
    assert "deb-systemd-invoke" not in postinst, "postinst starts or restarts the service"
    print("unit: enabled, not started (no deb-systemd-invoke in postinst)")
    assert chroot("getent", "passwd", "rsttrace").stdout.startswith("rsttrace:"), "no system user rsttrace"

    chroot("dpkg", "-r", "rsttrace")
    left = [path for path in package_files if os.path.lexists(merged + path)]
    assert not left, f"dpkg -r left the package's files: {left}"
    chroot("dpkg", "--purge", "rsttrace")
    after = file_list(merged)
    new = sorted(path for path in after - before if not BOOKKEEPING.match(path))
    gone = sorted(before - after - {"/tmp/rsttrace.deb"})
    assert not new, f"dpkg --purge left files that were not there before: {new}"
    assert not gone, f"files of the clean root gone after install and purge: {gone}"
    print(f"dpkg -r and --purge: {len(package_files)} files removed, the root's {len(before)} paths as before")
    return 0


def main():
    if os.geteuid() != 0:
        print("SKIP: dpkg -i into a chroot needs root")
        return SKIP
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        return inside(sys.argv[2], sys.argv[3], sys.argv[4])
    debs = sorted(glob.glob(os.path.join(sys.argv[1], "rsttrace_*.deb")), key=os.path.getmtime)
    if not debs:
        print(f"no .deb in {sys.argv[1]} (the `package: build` test makes it)")
        return 1
    for tool in ("debootstrap", "unshare", "chroot"):
        if not shutil.which(tool):
            print(f"SKIP: no {tool}")
            return SKIP
    # minbase plus the package's dependencies, and what the checks and the unit use that every
    # standard Debian system has (priority important): man-db, systemd, procps (the unit's /bin/kill).
    root = debian12_root.root_for(deb_dependencies(debs[-1]) + ["man-db", "systemd", "procps"])
    print("clean Debian 12 root:", root)
    # The mounts end with the namespace; the overlay's writes go with the directory.
    with tempfile.TemporaryDirectory(prefix="rsttrace-pkg-") as work:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "--", sys.executable,
                               os.path.abspath(__file__), "--inside", root, debs[-1], work]).returncode


if __name__ == "__main__":
    sys.exit(main())
