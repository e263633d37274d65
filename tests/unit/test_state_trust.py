"""The state directory is trusted only when it should be (issue 11, items 3 and 6; state file shapes).

Each refusal is a StateError (exit 2, one line naming the path) raised before anything is written:
the symlink's target, the foreign file and the directory are left exactly as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portscope.core.publish import audit, state
from portscope.core.publish.model import State, StoredBinding
from portscope.core.publish.trusted import StateError

REPO = Path(__file__).resolve().parents[2]
OTHER_UID = 4242
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def binding(bid: str = "ps-00000001", **kw: object) -> StoredBinding:
    fields: dict = {"id": bid, "kind": "publish", "host_ip": "0.0.0.0", "host_port": 8081, "protocol": "tcp"}
    fields |= {"container_port": 80, "container_id": "aaa", "container_name": "web", "last_ip": "172.17.0.2"}
    return StoredBinding(**(fields | kw))


def good_state(folder: Path, *bindings: StoredBinding) -> None:
    with state.locked(str(folder)) as f:
        state.save(f, State(list(bindings or [binding()])))


def take_lock(path: str, create: bool = True) -> None:
    with state.locked(path, create=create):
        pass


def snapshot_tree(path: Path) -> dict[str, tuple[int, int, int, bytes | str | None]]:
    """Every entry under `path` (not following symlinks): mode, owner, size and content or link target."""
    out = {}
    for entry in [path, *sorted(path.rglob("*"))]:
        info = entry.lstat()
        body: bytes | str | None = None
        if entry.is_symlink():
            body = os.readlink(entry)
        elif entry.is_file():
            body = entry.read_bytes()
        out[str(entry)] = (info.st_mode, info.st_uid, info.st_size, body)
    return out


# ------------------------------------------------------------------------------------- the four reproductions


def test_audit_log_symlink_is_not_followed(tmp_path: Path) -> None:
    folder, victim = tmp_path / "st", tmp_path / "victim"
    good_state(folder)
    victim.write_text("precious\n")
    (folder / "audit.log").symlink_to(victim)
    before = snapshot_tree(tmp_path)
    with pytest.raises(StateError, match=r"audit\.log is a symbolic link"):
        take_lock(str(folder))
    with pytest.raises(StateError, match="symbolic link"):
        audit.record(str(folder), "publish", "x", "ok")
    assert snapshot_tree(tmp_path) == before
    assert victim.read_text() == "precious\n"


def test_lock_symlink_does_not_create_its_target(tmp_path: Path) -> None:
    folder, target = tmp_path / "st", tmp_path / "created-by-lock"
    folder.mkdir(mode=0o700)
    (folder / "lock").symlink_to(target)
    before = snapshot_tree(tmp_path)
    with pytest.raises(StateError, match=r"lock is a symbolic link"):
        take_lock(str(folder))
    assert not target.exists()
    assert snapshot_tree(tmp_path) == before


def test_symlinked_state_dir_is_refused_and_its_target_not_chmoded(tmp_path: Path) -> None:
    target, link = tmp_path / "elsewhere", tmp_path / "st"
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    link.symlink_to(target)
    for path in (str(link), str(link) + "/"):
        with pytest.raises(StateError, match="symbolic link"):
            take_lock(path)
        with pytest.raises(StateError, match="symbolic link"):
            state.load(path)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert list(target.iterdir()) == []


@root_only
def test_state_written_by_someone_else_is_not_applied(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    good_state(folder)
    os.chown(folder / "state.json", OTHER_UID, OTHER_UID)
    before = snapshot_tree(tmp_path)
    with pytest.raises(StateError, match=rf"owned by uid {OTHER_UID}"):
        take_lock(str(folder))
    with pytest.raises(StateError, match=rf"owned by uid {OTHER_UID}"):
        state.load(str(folder))
    assert snapshot_tree(tmp_path) == before


@root_only
@pytest.mark.skipif(not os.access(UNSHARE, os.X_OK), reason="needs unshare(1)")
def test_root_apply_refuses_a_foreign_state_in_one_line(tmp_path: Path) -> None:
    """`portscope apply` (as root) stops before reading the firewall: exit 2, one line, nothing changed.

    It runs in a network namespace of its own (`unshare --net`): were the refusal to fail, no rule of
    this host's could change."""
    folder = tmp_path / "st"
    good_state(folder)
    os.chown(folder / "state.json", OTHER_UID, OTHER_UID)
    before = snapshot_tree(tmp_path)
    env = os.environ | {"PORTSCOPE_STATE_DIR": str(folder), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [UNSHARE, "--net", "--", sys.executable, "-m", "portscope", "apply"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "owned by uid 4242" in proc.stderr
    assert snapshot_tree(tmp_path) == before


# ----------------------------------------------------------------------------------- more ways to be untrusted


@pytest.mark.parametrize("name", ["state.json", "audit.log", "lock"])
def test_group_or_world_writable_files_are_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "st"
    good_state(folder)
    audit.record(str(folder), "publish", "x", "ok")
    os.chmod(folder / name, 0o620)
    with pytest.raises(StateError, match="writable by group or others"):
        take_lock(str(folder))


def test_world_writable_dir_is_refused_not_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    folder.mkdir()
    os.chmod(folder, 0o777)
    with pytest.raises(StateError, match="writable by group or others"):
        state.ensure_dir(str(folder))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777


def test_readable_dir_of_ours_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    folder.mkdir()
    os.chmod(folder, 0o755)
    state.ensure_dir(str(folder))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_hard_link_and_fifo_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    good_state(folder)
    other = tmp_path / "other"
    other.write_text("x")
    os.link(other, folder / "audit.log")
    with pytest.raises(StateError, match="hard links"):
        audit.record(str(folder), "publish", "x", "ok")
    assert other.read_text() == "x"
    os.unlink(folder / "state.json")
    os.mkfifo(folder / "state.json", 0o600)
    with pytest.raises(StateError, match="not a regular file"):
        state.load(str(folder))


def test_state_json_symlink_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    good_state(folder)
    os.replace(folder / "state.json", tmp_path / "real.json")
    (folder / "state.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(StateError, match="symbolic link"):
        state.load(str(folder))


def test_audit_log_is_a_private_regular_file(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    state.ensure_dir(str(folder))
    audit.record(str(folder), "publish", "x", "ok")
    info = (folder / "audit.log").lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert json.loads((folder / "audit.log").read_text())["action"] == "publish"


# ------------------------------------------------------------------------ item 3: a vanished state wipes nothing


def test_missing_state_is_an_error_when_required(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    assert state.load(str(folder)).bindings == []  # no state yet: nothing stored
    with pytest.raises(StateError, match="is missing"):
        state.load(str(folder), required=True)
    with pytest.raises(StateError, match=r"state directory .* is missing"):
        take_lock(str(folder), create=False)
    assert not folder.exists(), "a required state must not be re-created empty"


def test_save_never_drops_a_binding_it_was_not_told_to_remove(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    good_state(folder, binding("ps-00000001"), binding("ps-00000002", host_port=8082))
    before = (folder / "state.json").read_bytes()
    with state.locked(str(folder)) as f:
        with pytest.raises(StateError, match="ps-00000002 would be dropped"):
            state.save(f, State([binding("ps-00000001")]))
        with pytest.raises(StateError, match="would be dropped"):
            state.save(f, State())
    assert (folder / "state.json").read_bytes() == before
    with state.locked(str(folder)) as f:
        state.save(f, State([binding("ps-00000001")]), removed={"ps-00000002"})
    assert [b.id for b in state.load(str(folder)).bindings] == ["ps-00000001"]


# ----------------------------------------------------------------------------------------- state file shapes


def write_doc(folder: Path, doc: object) -> None:
    state.ensure_dir(str(folder))
    path = folder / "state.json"
    path.write_text(json.dumps(doc))
    os.chmod(path, 0o600)


GOOD = {"schema": state.SCHEMA, "bindings": [binding().to_dict()], "backend": "iptables-nft"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"host_port": "80"}, "bindings[0].host_port"),
        ({"host_port": 70000}, "bindings[0].host_port"),
        ({"host_port": True}, "bindings[0].host_port"),
        ({"host_ip": 1234}, "bindings[0].host_ip"),
        ({"host_ip": "１.２.３.４"}, "bindings[0].host_ip"),
        ({"last_ip": "10.0.0.0/8"}, "bindings[0].last_ip"),
        ({"protocol": "icmp"}, "bindings[0].protocol"),
        ({"kind": "nat"}, "bindings[0].kind"),
        ({"id": "ps-xyz"}, "bindings[0].id"),
        ({"bridge": "br0\n-A INPUT"}, "bindings[0].bridge"),
        ({"container_name": "web;rm"}, "bindings[0].container_name"),
        ({"why": "x" * 300}, "bindings[0].why"),
        ({"health": "great"}, "bindings[0].health"),
    ],
)
def test_a_wrong_field_is_named(tmp_path: Path, change: dict, field: str) -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["bindings"][0] |= change
    write_doc(tmp_path / "st", doc)
    with pytest.raises(StateError) as err:
        state.load(str(tmp_path / "st"))
    assert field in str(err.value) and "\n" not in str(err.value)
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ([], "not a portscope state file"),
        ({"schema": state.SCHEMA, "bindings": {}}, "bindings is not a list"),
        ({"schema": state.SCHEMA, "bindings": [1]}, "bindings[0] is not an object"),
        ({"schema": state.SCHEMA, "bindings": [{"kind": "publish"}]}, "bindings[0].id is missing"),
        ({"schema": state.SCHEMA, "backend": 3}, "backend is 3"),
        ({"schema": state.SCHEMA, "bindings": [GOOD["bindings"][0]] * 2}, "the same id twice"),
    ],
)
def test_wrong_shapes_are_named(tmp_path: Path, doc: object, words: str) -> None:
    write_doc(tmp_path / "st", doc)
    with pytest.raises(StateError, match=None) as err:
        state.load(str(tmp_path / "st"))
    assert words in str(err.value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=20,
)
FIELDS = st.sampled_from(list(GOOD["bindings"][0]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=FIELDS, value=JSON)
def test_any_value_in_any_field_loads_or_is_refused(tmp_path: Path, field: str, value: object) -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["bindings"][0][field] = value
    write_doc(tmp_path / "st", doc)
    try:
        loaded = state.load(str(tmp_path / "st"))
    except StateError as exc:
        assert field in str(exc) and "\n" not in str(exc)
    else:
        (b,) = loaded.bindings
        assert b.describe()  # a loaded binding is whole


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=JSON)
def test_any_document_loads_or_is_refused(tmp_path: Path, doc: object) -> None:
    write_doc(tmp_path / "st", doc if not isinstance(doc, dict) else doc | {"schema": state.SCHEMA})
    try:
        loaded = state.load(str(tmp_path / "st"))
    except StateError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(loaded, State)


def test_a_state_nested_too_deep_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    state.ensure_dir(str(folder))
    (folder / "state.json").write_text("[" * 100_000 + "]" * 100_000)
    os.chmod(folder / "state.json", 0o600)
    with pytest.raises(StateError, match="nested too deeply"):
        state.load(str(folder))


# ------------------------------------------------------------------------- the directories above the state dir


def test_a_parent_others_may_write_to_is_refused(tmp_path: Path) -> None:
    for mode in (0o777, 0o775):
        parent = tmp_path / f"open-{mode:o}"
        parent.mkdir()
        os.chmod(parent, mode)
        before = snapshot_tree(tmp_path)
        with pytest.raises(StateError, match=r"above the state directory\) is writable by group or others"):
            take_lock(str(parent / "st"))
        with pytest.raises(StateError, match="writable by group or others"):
            take_lock(str(parent / "deeper" / "st"))
        assert snapshot_tree(tmp_path) == before, "something was created under an untrusted parent"


def test_a_sticky_world_writable_parent_with_our_entry_is_trusted(tmp_path: Path) -> None:
    """As /tmp: others may write there, but only we may rename or remove our entry."""
    public = tmp_path / "public"
    public.mkdir()
    os.chmod(public, 0o1777)
    good_state(public / "mine" / "st")
    assert state.load(str(public / "mine" / "st")).bindings
    good_state(public / "st")
    assert state.load(str(public / "st")).bindings


@root_only
def test_a_parent_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    with pytest.raises(StateError, match=rf"{theirs} \(above the state directory\) is owned by uid {OTHER_UID}"):
        take_lock(str(theirs / "st"))
    assert list(theirs.iterdir()) == []


@root_only
def test_an_entry_of_someone_else_in_a_sticky_parent_is_refused(tmp_path: Path) -> None:
    """/tmp/x/state with /tmp/x another user's: they could swap `state` for their own directory."""
    public = tmp_path / "public"
    public.mkdir()
    os.chmod(public, 0o1777)
    theirs = public / "x"
    theirs.mkdir(mode=0o755)
    good_state(theirs / "st")  # a good state, until /tmp/x changes hands
    os.chown(theirs, OTHER_UID, OTHER_UID)
    before = snapshot_tree(tmp_path)
    with pytest.raises(
        StateError, match=rf"{theirs} \(on the way to the state directory\) is owned by uid {OTHER_UID}"
    ):
        take_lock(str(theirs / "st"))
    with pytest.raises(StateError, match=f"owned by uid {OTHER_UID}"):
        state.load(str(theirs / "st"))
    assert snapshot_tree(tmp_path) == before


@root_only
def test_a_symlink_of_someone_else_on_the_way_is_refused(tmp_path: Path) -> None:
    """/tmp/link -> a safe place: the link is another user's, who could point it elsewhere."""
    public, safe = tmp_path / "public", tmp_path / "safe"
    public.mkdir()
    os.chmod(public, 0o1777)
    safe.mkdir(mode=0o700)
    link = public / "link"
    link.symlink_to(safe)
    os.lchown(link, OTHER_UID, OTHER_UID)
    with pytest.raises(StateError, match=rf"{link} \(on the way to the state directory\) is owned by uid {OTHER_UID}"):
        take_lock(str(link / "st"))
    assert list(safe.iterdir()) == []


def test_a_symlink_to_a_place_others_may_write_to_is_refused(tmp_path: Path) -> None:
    """The link is ours, but the folder it leads to is not safe: the resolved path is checked too."""
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    os.chmod(unsafe, 0o777)
    (tmp_path / "link").symlink_to(unsafe)
    with pytest.raises(StateError, match=rf"{unsafe} \(above the state directory\) is writable"):
        take_lock(str(tmp_path / "link" / "st"))
    assert list(unsafe.iterdir()) == []
