"""`cmake --install` stages the binary, the systemd unit and the docs; the unit
passes `systemd-analyze verify`, and its ExecStart command line really runs
(with the capture directory moved to a temporary one). Needs root to run
rsttrace; skipped (77) otherwise."""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile

BUILD = sys.argv[1]
SKIP = 77


def main():
    if os.geteuid() != 0:
        print("SKIP: running the unit's command line needs root")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="rsttrace-install-") as stage:
        env = dict(os.environ, DESTDIR=stage)
        subprocess.run(["cmake", "--install", BUILD], check=True, env=env, stdout=subprocess.DEVNULL)
        prefix = subprocess.run(["cmake", "-L", "-N", BUILD], check=True, capture_output=True,
                                text=True).stdout
        prefix = next(line.split("=", 1)[1] for line in prefix.splitlines()
                      if line.startswith("CMAKE_INSTALL_PREFIX:"))
        staged = stage + prefix
        binary = os.path.join(staged, "bin", "rsttrace")
        unit = os.path.join(staged, "lib", "systemd", "system", "rsttrace.service")
        sysusers = os.path.join(staged, "lib", "sysusers.d", "rsttrace.conf")
        for path in (binary, unit, os.path.join(staged, "share", "doc", "rsttrace", "README.md"), sysusers):
            assert os.path.exists(path), f"not installed: {path}"
        with open(unit) as f:
            text = f.read()
        assert f"ExecStart={prefix}/bin/rsttrace " in text, "ExecStart does not name the installed binary"
        with open(sysusers) as f:
            users = [line.split() for line in f if line.startswith("u ")]
        assert [u[1] for u in users] == ["rsttrace"] and users[0][-1] == "/usr/sbin/nologin", \
            f"sysusers.d must create one user rsttrace without a shell: {users}"
        # The collector switches user after attach: the sandbox must let it.
        bounding = next(line for line in text.splitlines() if line.startswith("CapabilityBoundingSet="))
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            assert cap in bounding.split("=", 1)[1].split(), f"CapabilityBoundingSet lacks {cap}"

        # The unit as it would be installed, pointing at the staged binary.
        logs = os.path.join(stage, "log")
        os.mkdir(logs, 0o700)
        checked = os.path.join(stage, "rsttrace.service")
        with open(checked, "w") as f:
            f.write(text.replace(f"{prefix}/bin/rsttrace", binary))
        if shutil.which("systemd-analyze"):
            # Documentation=man:rsttrace(1): the staged man page, found through MANPATH.
            manpath = os.path.join(staged, "share", "man")
            assert os.path.exists(os.path.join(manpath, "man1", "rsttrace.1")), "man page not installed"
            verify = subprocess.run(["systemd-analyze", "verify", checked], capture_output=True, text=True,
                                    env=dict(os.environ, MANPATH=manpath + ":"))
            assert verify.returncode == 0, f"systemd-analyze verify: {verify.stderr}"
            print("systemd-analyze verify: ok")
        else:
            print("note: no systemd-analyze; the unit's syntax is not verified")

        # Its command line, for one second, in a network namespace of its own.
        joined = text.replace("\\\n", " ")
        command = next(line for line in joined.splitlines() if line.startswith("ExecStart="))
        argv = shlex.split(command[len("ExecStart="):].replace("/var/log/rsttrace", logs))
        argv[0] = binary
        run = subprocess.run(["unshare", "--net", "--"] + argv + ["--duration", "1"],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"ExecStart exited {run.returncode}: {run.stderr}"
        capture = os.path.join(logs, "events.jsonl")
        assert os.path.exists(capture) and oct(os.stat(capture).st_mode & 0o777) == "0o600", "no 0600 capture"
        assert os.stat(capture).st_uid == 0, "the capture is created by root, not handed to the collector"
        assert "the collector runs as user" in run.stderr, f"no word of the collector's user: {run.stderr}"
        print("ExecStart ran:", " ".join(argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
