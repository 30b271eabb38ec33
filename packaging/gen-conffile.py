#!/usr/bin/env python3
"""Prints /etc/waggle/waggle.toml, the package's conffile.

Source of truth for keys and defaults is the broker itself: when
`waggle config --default` exists, its output is turned into the conffile, key
by key, each commented out, with the explanation for that key taken from
packaging/waggle.toml.in (keys the template does not know get none, and a
warning). Without that command the template is used as it stands.

Either way the result is checked before it is printed: it must parse as TOML,
and with every key uncommented it must give each key exactly once, so that an
administrator can uncomment any line.

The template's uncommented lines (the settings the package makes, such as the
data directory) are kept after the commented default of the same key.
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

KEY_LINE = re.compile(r"^(#\s)?([A-Za-z0-9_]+)\s*=\s*(.*)$")
HEADER = re.compile(r"^\[([A-Za-z0-9_.]+)\]\s*$")


def read_template(path):
    """Splits the template into its header comment, per-key help comments,
    and per-key package settings."""
    head, helps, settings, order = [], {}, {}, []
    table, pending, in_head = None, [], True
    for line in path.read_text().splitlines():
        header = HEADER.match(line)
        if header:
            table, pending, in_head = header.group(1), [], False
            order.append(table)
            continue
        if in_head:
            head.append(line)
            continue
        m = KEY_LINE.match(line)
        if m and table is not None:
            key = (table, m.group(2))
            if m.group(1):
                helps[key] = pending
            else:
                settings[key] = line
            pending = []
        elif line.startswith("#"):
            pending.append(line)
    while head and not head[-1].strip():
        head.pop()
    return head, helps, settings, order


def defaults_from_binary(binary):
    """The `[table]` / `key = value` lines `waggle config --default` prints, or None."""
    try:
        run = subprocess.run([binary, "config", "--default"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        sys.exit(f"gen-conffile: cannot run {binary}: {e}")
    if run.returncode != 0:
        return None
    tomllib.loads(run.stdout)  # fails loudly if the broker prints something else
    return run.stdout.splitlines()


def render(head, helps, settings, lines):
    out, table, unknown = list(head), None, []
    for line in lines:
        header = HEADER.match(line)
        if header:
            table = header.group(1)
            out += ["", line]
            continue
        m = KEY_LINE.match(line)
        if not m or table is None:
            continue
        key = (table, m.group(2))
        if key not in helps:
            unknown.append(f"{table}.{key[1]}")
        out += helps.get(key, [])
        out.append("# " + line)
        if key in settings:
            out.append(settings.pop(key))
    if settings:
        sys.exit("gen-conffile: the template sets keys the broker does not have: "
                 + ", ".join(f"{t}.{k}" for t, k in settings))
    if unknown:
        print("gen-conffile: warning: no explanation in waggle.toml.in for " + ", ".join(unknown),
              file=sys.stderr)
    return out


def check(text):
    tomllib.loads(text)
    uncommented = "\n".join(
        line[2:] if KEY_LINE.match(line) and line.startswith("# ") else line
        for line in text.splitlines()
        if not (KEY_LINE.match(line) and not line.startswith("#"))
    )
    try:
        tomllib.loads(uncommented)
    except tomllib.TOMLDecodeError as e:
        sys.exit(f"gen-conffile: with every key uncommented the file is not valid TOML: {e}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen-conffile.py PATH/TO/waggle")
    template = Path(__file__).with_name("waggle.toml.in")
    head, helps, settings, _ = read_template(template)
    lines = defaults_from_binary(sys.argv[1])
    if lines is None:
        print("gen-conffile: warning: `waggle config --default` is not available; the defaults "
              "come from packaging/waggle.toml.in unchecked against the binary", file=sys.stderr)
        text = template.read_text()
    else:
        text = "\n".join(render(head, helps, settings, lines)) + "\n"
    check(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
