# Sourced by the scripts in scripts/: install Debian packages when they are missing.
# CI runs as root; elsewhere sudo is used if there is one, else the script stops with a message.
# Set APT_WHO (the calling script's name) before sourcing, for the messages.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "${APT_WHO:-scripts}: need root (or sudo) for: $*" >&2; exit 1
  fi
}

# The packages among "$@" that are not installed, space-separated.
missing() {
  local p out=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out="$out $p"
  done
  echo "$out"
}

APT_UPDATED=0
# apt-get install "$@" (nothing when empty), after one apt-get update per script run.
apt_install() {
  [ -n "$*" ] || return 0
  if [ "$APT_UPDATED" -eq 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  # shellcheck disable=SC2068
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $@
}
