"""`portscope service install|uninstall|status`: the systemd unit that applies the bindings at boot, then watches."""

from __future__ import annotations

import argparse
import json
import sys

from portscope.core.printable import printable

EXIT_CODES = """exit status:
  0  done (also: uninstall with nothing installed; status, whatever it finds)
  1  systemctl refused a step (what was written before it is put back)
  2  a unit of that name that is not portscope's, no systemctl, no installed `portscope` command
  4  not root (install, uninstall)
"""
DESCRIPTION = """The unit (/etc/systemd/system/portscope.service) runs `portscope apply` once docker.service is up,
then `portscope watch`, and is started again 5 s after a failure. It talks to the engine at
/var/run/docker.sock; for another (Podman: unix:///run/podman/podman.sock) add
Environment=DOCKER_HOST=... with `systemctl edit portscope.service` (it starts after podman.socket
where that is installed).
Without a running systemd (a container, a chroot) install enables it for the next boot."""


def add_service_command(sub: argparse._SubParsersAction) -> None:
    """Register `service` and its three actions on the main parser's subparsers."""
    p = sub.add_parser(
        "service",
        help="install, remove or show the systemd unit that applies the bindings at boot, then watches",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text, func in (
        ("install", "write the unit, enable it and start it", cmd_install),
        ("uninstall", "stop, disable and remove the unit (the bindings and their rules stay)", cmd_uninstall),
        ("status", "whether the unit is installed, enabled and active, and what it runs", cmd_status),
    ):
        a = actions.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        a.add_argument("--root", metavar="DIR", default="/",
                       help="act on the system under DIR, as systemctl --root (default /, this host)")  # fmt: skip
        a.set_defaults(func=func)
        if name == "status":
            a.add_argument("--json", action="store_true", help="print JSON (schema portscope.service/1)")


def cmd_install(args: argparse.Namespace) -> int:
    from portscope.core import service

    done = service.install(service.installed_command(sys.argv[0], sys.executable), args.root)
    what = "installed" if done.changed else "already installed"
    if done.started:
        print(f"{what} {printable(done.path)}; enabled and started: it applies the bindings at boot, then watches")
    elif not service.this_host(args.root):
        print(f"{what} {printable(done.path)}; enabled in {printable(args.root)} for its next boot")
    else:
        print(
            f"{what} {printable(done.path)}; enabled for the next boot (systemd is not running here): "
            "`portscope apply` now, or `systemctl start portscope.service` once systemd runs"
        )
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    from portscope.core import service

    path = service.uninstall(args.root)
    if path is None:
        print(f"{service.UNIT} is not installed: nothing to remove")
    else:
        print(f"disabled and removed {printable(path)}; the bindings and their rules stay")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from portscope.core import service

    st = service.status(args.root)
    if args.json:
        json.dump(st.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not st.installed:
        print(f"{service.UNIT}: not installed ({printable(st.unit)})")
    elif not st.ours:
        print(f"{service.UNIT}: {printable(st.unit)} is not portscope's (no portscope header)")
    else:
        print(f"{service.UNIT}: installed ({printable(st.unit)})")
    print(f"enabled: {printable(st.enabled or 'unknown (no systemctl)')}")
    print(f"active: {printable(st.active or 'unknown (systemd does not run this system)')}")
    for key in ("ExecStartPre", "ExecStart"):
        if key in st.runs:
            print(f"{key}: {printable(' '.join(st.runs[key]))}")
    return 0
