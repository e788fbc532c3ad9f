#!/usr/bin/env bash
# Install the system tools the tests and the demo use, where missing: pdflatex (TeX Live),
# pdftoppm (poppler), a C compiler and OpenBLAS.  Needs root (apt-get); otherwise says what to install.
set -u
need=()
command -v pdflatex >/dev/null 2>&1 || need+=(texlive-latex-base texlive-latex-recommended)
# Latin Modern (the documents use T1 fonts): only a Recommends of TeX Live, so named here
kpsewhich lmodern.sty >/dev/null 2>&1 || need+=(lmodern)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# OpenBLAS: the generated C's matrix products (the binding falls back to portable loops without it)
ls /usr/lib/libopenblas.so /usr/lib/*/libopenblas.so 2>/dev/null | grep -q . || need+=(libopenblas-dev)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "could not install ${need[*]}: tests that need them will be skipped" >&2; exit 0; }
else
  echo "missing system packages: ${need[*]} (install them as root: apt-get install ${need[*]}); tests that need them are skipped" >&2
fi
exit 0
