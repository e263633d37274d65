# Sourced by scripts/run and scripts/test: make .venv with portscope installed (editable) and the given extras.
ensure_venv() {
  local extras="$1" marker
  marker="$ROOT/.venv/.installed${extras:+-$extras}"
  if [ ! -f "$marker" ] || [ "$ROOT/pyproject.toml" -nt "$marker" ]; then
    [ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -e "$ROOT${extras:+[$extras]}"
    touch "$marker"
  fi
}
