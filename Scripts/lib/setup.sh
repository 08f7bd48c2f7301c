# Shared by the Scripts/: find or install the tools a fresh Debian machine lacks.
# Sourced, not run.

step() { printf '\n==> %s\n' "$*" >&2; }

apt_updated=false
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: $* (run as root, or install them)" >&2
    exit 1
  fi
  if [ "$apt_updated" = false ]; then
    apt-get update -qq >&2
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_swift() {
  if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
  fi
  command -v swift >/dev/null 2>&1 || { echo "Swift 6 is required (https://swift.org/install)" >&2; exit 1; }
  # The event store links the system SQLite (CSQLite).
  [ -f /usr/include/sqlite3.h ] || apt_install libsqlite3-dev pkg-config
}

# A venv in .venv with pytest and jsonschema (the contract tests' only dependencies).
ensure_python_venv() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import pytest, jsonschema" 2>/dev/null; then
    step "Python venv with pytest and jsonschema"
    rm -rf .venv
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
    .venv/bin/python -m pip install -q --disable-pip-version-check pytest jsonschema >&2
  fi
}
