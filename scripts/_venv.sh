# Sourced by scripts/run and scripts/test: make .venv with portscope installed (editable) and the given extras.
# editable_mode=compat installs a plain path entry (.pth) instead of an import hook, which costs every
# portscope start ~15-20 ms.
ensure_venv() {
  local extras="$1" marker
  marker="$ROOT/.venv/.installed${extras:+-$extras}"
  if [ ! -f "$marker" ] || [ "$ROOT/pyproject.toml" -nt "$marker" ] || [ "$ROOT/constraints/test.txt" -nt "$marker" ]; then
    [ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv"
    local constraints=()
    if [ "$extras" = test ]; then
      constraints=(-c "$ROOT/constraints/test.txt")  # the versions the TUI snapshots were made with
    fi
    "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check --config-settings editable_mode=compat \
      "${constraints[@]}" -e "$ROOT${extras:+[$extras]}"
    touch "$marker"
  fi
}
