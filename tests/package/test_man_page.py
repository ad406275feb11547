"""man/rsttrace.1 cannot drift from the CLI: every option and subcommand that
userspace/cli/options.cpp declares (the hidden lab-client excepted) and every
verdict of userspace/attribute/verdict.h is in it, it has the sections issue
19 asks for, and man(1) renders it without a warning."""

import os
import re
import subprocess
import sys

TREE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MAN = os.path.join(TREE, "man", "rsttrace.1")


def declared_options():
    with open(os.path.join(TREE, "userspace", "cli", "options.cpp")) as f:
        text = f.read()
    names, commands = set(), set()
    for line in text.splitlines():
        if "lab_client_command" in line:  # internal: not in --help, not in the man page
            continue
        for spec in re.findall(r'(?:add_option|add_flag|set_version_flag)\(\s*"([^"]+)"', line):
            names.update(name for name in spec.split(",") if name.startswith("-"))
    # The option continued onto the next line: add_option(\n "name"...
    for spec in re.findall(r'(?:add_option|add_flag)\(\s*\n\s*"([^"]+)"', text):
        names.update(name for name in spec.split(",") if name.startswith("-"))
    commands.update(re.findall(r'add_subcommand\(\s*"([^"]+)"', text))
    commands.discard("lab-client")
    return names | {"--help", "-h"}, commands


def main():
    with open(MAN) as f:
        source = f.read()
    # The page as man renders it (its hyphens back to ASCII).
    render = subprocess.run(["man", "--warnings", "-l", MAN], capture_output=True, text=True,
                            env=dict(os.environ, MANPAGER="cat", MANWIDTH="120", LANG="C.UTF-8"))
    assert render.returncode == 0, render.stderr
    assert not render.stderr.strip(), f"man --warnings: {render.stderr}"
    text = render.stdout.replace("\u2010", "-").replace("\u2212", "-")
    words = set(re.findall(r"(?<![\w-])(--?[\w][\w-]*)", text))
    options, commands = declared_options()
    assert len(options) > 20, f"parsed too few options from options.cpp: {sorted(options)}"
    missing = sorted(option for option in options if option not in words)
    assert not missing, f"options of userspace/cli/options.cpp missing from man/rsttrace.1: {missing}"
    for command in sorted(commands):
        assert re.search(rf"^\.B {re.escape(command)}$", source, re.M), f"subcommand {command} not documented"
    with open(os.path.join(TREE, "userspace", "attribute", "verdict.h")) as f:
        verdicts = re.findall(r'\{Verdict::\w+, "([\w-]+)"\}', f.read())
    assert verdicts, "no verdicts parsed from verdict.h"
    for verdict in verdicts:
        assert re.search(rf"^\.B {re.escape(verdict)}$", source, re.M), f"verdict {verdict} not in VERDICTS"
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "COMMANDS", "VERDICTS", "EXIT STATUS", "FILES"):
        assert re.search(rf"^\.SH {section}$", source, re.M), f"no {section} section"
    print(f"man page: {len(options)} options, {len(commands)} subcommands, {len(verdicts)} verdicts, rendered "
          f"{len(text.splitlines())} lines without a warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
