#!/usr/bin/env bash
# test/citus/build-citus.sh -- make Citus available in the PostgreSQL of $PG_CONFIG
#
#   PG_CONFIG=/path/to/pg_config test/citus/build-citus.sh
#
# Uses an installed Citus when $(pg_config --pkglibdir)/citus.so exists.
# Otherwise builds the vendored Citus 13.2.2 tarball (never copied into this
# repository) and installs it into PG_CONFIG's installation:
#   * installs the Debian build dependencies with apt-get when a header or
#     library is missing (needs root; the test command runs as root);
#   * finds the tarball in $CITUS_VENDOR, else $(repo top)/../shared/vendor
#     (where CI finds it: the repo is cloned next to shared/), else
#     /work/shared/vendor; checks its sha256 (shared/vendor/README.md);
#   * the tarball carries citus-13.2.2-pg15.20.patch (it includes
#     commands/dbcommands.h for have_createdb_privilege(), which PostgreSQL
#     declares and exports from 15.20 on).  When the target server's
#     dbcommands.h does not declare it (15.18, say) the patch is reversed,
#     restoring Citus' own static copy;
#   * configure PG_CONFIG=..., make -j2, make install.
# The build directory is $CITUS_BUILD_DIR (default /tmp/citus-build-$USER);
# kept, so a second run only re-links.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-pg_config}
command -v "$PG_CONFIG" >/dev/null || { echo "build-citus: no pg_config ($PG_CONFIG)" >&2; exit 1; }
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
INCSERVER=$("$PG_CONFIG" --includedir-server)
VERSION=13.2.2
SHA256=781d16916cd8a1d5cb8ee0b0172e83d687badfbd9842ba0ba02916f56b7e74c7

if [ -f "$PKGLIBDIR/citus.so" ]; then
	echo "build-citus: Citus already installed in $PKGLIBDIR"
	exit 0
fi

# --- the vendored tarball
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
VENDOR=
for d in ${CITUS_VENDOR:-} "$top/../shared/vendor" /work/shared/vendor; do
	if [ -f "$d/citus-$VERSION.tar.gz" ]; then VENDOR=$(cd "$d" && pwd); break; fi
done
[ -n "$VENDOR" ] || { echo "build-citus: citus-$VERSION.tar.gz not found (CITUS_VENDOR, $top/../shared/vendor, /work/shared/vendor)" >&2; exit 1; }
TARBALL=$VENDOR/citus-$VERSION.tar.gz
PATCH=$VENDOR/citus-$VERSION-pg15.20.patch
echo "$SHA256  $TARBALL" | sha256sum -c --quiet - \
	|| { echo "build-citus: sha256 mismatch for $TARBALL" >&2; exit 1; }

# --- build dependencies: test each header/library, apt-get what is missing
missing=()
need() {	# need PACKAGE FILE...: PACKAGE is missing when none of FILE exists
	local pkg=$1 f; shift
	for f in "$@"; do [ -e "$f" ] && return 0; done
	missing+=("$pkg")
}
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
L=/usr/lib/$multiarch
need libzstd-dev          /usr/include/zstd.h
need liblz4-dev           /usr/include/lz4.h
need libcurl4-openssl-dev /usr/include/$multiarch/curl/curl.h /usr/include/curl/curl.h
need libssl-dev           /usr/include/openssl/ssl.h
need libkrb5-dev          /usr/include/gssapi/gssapi.h /usr/include/krb5.h
need libselinux1-dev      /usr/include/selinux/selinux.h
need libxslt1-dev         /usr/include/libxslt/xslt.h
need libxml2-dev          /usr/include/libxml2/libxml/parser.h
need libpam0g-dev         /usr/include/security/pam_appl.h
need libreadline-dev      /usr/include/readline/readline.h
need zlib1g-dev           /usr/include/zlib.h
need libicu-dev           /usr/include/unicode/ucol.h
need make                 /usr/bin/make
need gcc                  /usr/bin/gcc
# the linker wants the unversioned .so of what it links
need libzstd-dev $L/libzstd.so
need liblz4-dev  $L/liblz4.so
need libcurl4-openssl-dev $L/libcurl.so
if [ ${#missing[@]} -gt 0 ]; then
	# unique, in order
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
	echo "build-citus: apt-get install ${missing[*]}"
	[ "$(id -u)" = 0 ] || { echo "build-citus: not root, cannot apt-get install ${missing[*]}" >&2; exit 1; }
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
		|| { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# --- extract, adapt to the target server, build, install
BUILD=${CITUS_BUILD_DIR:-/tmp/citus-build-${USER:-$(id -un)}}
SRC=$BUILD/citus-$VERSION
mkdir -p "$BUILD"
if [ ! -f "$SRC/.extracted" ]; then
	rm -rf "$SRC"
	tar -C "$BUILD" -xzf "$TARBALL"
	touch "$SRC/.extracted"
fi

# The patch, as shipped, is applied.  Keep it only if the target server
# declares have_createdb_privilege() (PostgreSQL >= 15.20); else reverse it.
COMPAT=$SRC/src/include/pg_version_compat.h
if grep -q 'have_createdb_privilege' "$INCSERVER/commands/dbcommands.h" 2>/dev/null; then
	want=patched
else
	want=unpatched
fi
if grep -q '^#include "commands/dbcommands.h".*have_createdb_privilege' "$COMPAT"; then
	have=patched
else
	have=unpatched
fi
if [ "$want" != "$have" ]; then
	[ -f "$PATCH" ] || { echo "build-citus: $PATCH not found" >&2; exit 1; }
	if [ "$want" = unpatched ]; then
		echo "build-citus: $("$PG_CONFIG" --version) does not declare have_createdb_privilege(): reversing $(basename "$PATCH")"
		patch -s -R -p0 "$COMPAT" < "$PATCH"
	else
		echo "build-citus: $("$PG_CONFIG" --version) declares have_createdb_privilege(): applying $(basename "$PATCH")"
		patch -s -p0 "$COMPAT" < "$PATCH"
	fi
	rm -f "$SRC/.configured-for"	# the headers changed: rebuild
	make -s -C "$SRC" clean >/dev/null 2>&1 || true
fi

cd "$SRC"
stamp="$PG_CONFIG $want"
if [ "$(cat .configured-for 2>/dev/null)" != "$stamp" ]; then
	echo "build-citus: configure PG_CONFIG=$PG_CONFIG"
	./configure -q PG_CONFIG="$PG_CONFIG" >configure.out 2>&1 \
		|| { tail -30 configure.out >&2; exit 1; }
	echo "$stamp" > .configured-for
fi
echo "build-citus: make -j2 (a few minutes)"
make -s -j2 >make.out 2>&1 || { tail -40 make.out >&2; exit 1; }
make -s install >install.out 2>&1 || { tail -20 install.out >&2; exit 1; }
[ -f "$PKGLIBDIR/citus.so" ] || { echo "build-citus: make install did not install $PKGLIBDIR/citus.so" >&2; exit 1; }
echo "build-citus: Citus $VERSION installed into $PKGLIBDIR"
