#!/bin/sh
# Install a 3D Slicer release archive under PREFIX, after checking its SHA-256.
#
#   install-slicer.sh URL_OR_FILE SHA256 PREFIX [DEFAULTS_INI]
#
# Nothing is left under PREFIX unless the checksum matches and the archive has
# a Slicer launcher. DEFAULTS_INI becomes share/Slicer-X.Y/SlicerDefaultSettings.ini,
# which Slicer merges into user settings for keys the user has not set.
set -eu
src="$1"; sha="$2"; prefix="$3"; defaults="${4:-}"
[ -n "$sha" ] || { echo "install-slicer: a SHA-256 is required" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
case "$src" in
    http://*|https://*) curl -fsSL --retry 3 -o "$work/slicer.tar.gz" "$src" ;;
    *) cp "$src" "$work/slicer.tar.gz" ;;
esac
echo "$sha  $work/slicer.tar.gz" | sha256sum -c --status - || {
    echo "install-slicer: checksum mismatch for $src (expected $sha, got $(sha256sum "$work/slicer.tar.gz" | cut -d' ' -f1))" >&2
    exit 1
}
mkdir "$work/x"
tar -xzf "$work/slicer.tar.gz" -C "$work/x"
top=$(find "$work/x" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -n "$top" ] && [ -x "$top/Slicer" ] || { echo "install-slicer: no Slicer launcher in the archive" >&2; exit 1; }
share=$(find "$top/share" -mindepth 1 -maxdepth 1 -type d -name 'Slicer-*' | head -n 1)
[ -n "$share" ] || { echo "install-slicer: no share/Slicer-X.Y in the archive" >&2; exit 1; }
if [ -n "$defaults" ]; then cp "$defaults" "$share/SlicerDefaultSettings.ini"; fi
rm -rf "$prefix"
mkdir -p "$(dirname "$prefix")"
mv "$top" "$prefix"
# Read-only for users: per-user state goes to the home (see slicer-launch).
chmod -R a+rX,go-w "$prefix"
echo "install-slicer: installed $(basename "$share") under $prefix"
