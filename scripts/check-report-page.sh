#!/usr/bin/env bash
# Opens report.html in headless Chromium at a laptop-sized window (1366×768) and checks what a reader sees
# first: the page starts with the Summary section, its table is on the first screen and fits the window's
# width, no figure is wider than the window and the page never scrolls sideways. Writes a screenshot of
# the first screen beside each report (report-1366x768.png) for a human to look at.
#
#   scripts/check-report-page.sh                 # the report tests' two fixture reports, written under
#                                                # $CARGO_TARGET_DIR/report-page-check
#   scripts/check-report-page.sh DIR [DIR…]      # report folders written by `rewarm report`
#   REWARM_PAGE_WIDTH=1024 scripts/check-report-page.sh …   # another window width
#
# Needs Chromium: REWARM_BROWSER=/path/to/chrome, else `chromium`, `chromium-browser` or `google-chrome`
# on PATH; as root on Debian/Ubuntu it is installed with apt-get (once).
set -euo pipefail
cd "$(dirname "$0")/.."
WIDTH=${REWARM_PAGE_WIDTH:-1366}
HEIGHT=768

find_browser() {
  if [ -n "${REWARM_BROWSER:-}" ]; then echo "$REWARM_BROWSER"; return; fi
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null; then command -v "$b"; return; fi
  done
}

browser="$(find_browser)"
if [ -z "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "check-report-page: installing Chromium (apt-get install chromium, once)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  browser="$(find_browser)"
fi
if [ -z "$browser" ]; then
  echo "check-report-page: no Chromium found; install it (Debian/Ubuntu: apt-get install chromium) or set" \
       "REWARM_BROWSER to a Chrome or Chromium binary" >&2
  exit 1
fi

if [ $# -eq 0 ]; then
  fixtures="${CARGO_TARGET_DIR:-target}/report-page-check"
  rm -rf "$fixtures"
  # The report tests write their fixture reports here (the same runs as the golden report.md files).
  REWARM_REPORT_OUT="$fixtures" cargo test -q --release -p rewarm-report --test report \
    -- golden_report_md a_seeded_sweep_reports >/dev/null
  set -- "$fixtures" "$fixtures/seeds"
fi

# Measured in the page after layout; the verdict is written into the DOM, which --dump-dom prints.
probe='<script>
addEventListener("load", () => {
  const bad = [];
  const w = innerWidth, h = innerHeight;
  const h2 = document.querySelector("h2");
  if (!h2 || h2.textContent !== "Summary") bad.push("the first section is not Summary but " + (h2 && h2.textContent));
  const table = document.querySelector("table");
  if (!table) bad.push("no table");
  else {
    const r = table.getBoundingClientRect();
    if (r.top >= h) bad.push("the summary table starts below the first screen (top " + Math.round(r.top) + " px)");
    if (r.right > w) bad.push("the summary table is wider than the window (" + Math.round(r.right) + " > " + w + " px)");
  }
  document.querySelectorAll("figure svg").forEach((s, i) => {
    const r = s.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) bad.push("figure " + i + " is not drawn");
    if (r.right > w) bad.push("figure " + i + " is wider than the window");
  });
  if (document.documentElement.scrollWidth > w) bad.push("the page scrolls sideways (" + document.documentElement.scrollWidth + " px)");
  const out = document.createElement("pre");
  out.id = "page-check";
  out.textContent = bad.length ? "PAGE-CHECK FAIL: " + bad.join("; ") : "PAGE-CHECK OK";
  document.body.appendChild(out);
});
</script>'

run_browser() {
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --window-size="$WIDTH,$HEIGHT" "$@" 2>/dev/null
}

status=0
for dir in "$@"; do
  page="$dir/report.html"
  if [ ! -f "$page" ]; then
    echo "check-report-page: $page does not exist; write it with \`rewarm report RUNS… --out $dir\`" >&2
    exit 1
  fi
  probed="$dir/.page-check.html"
  # The probe goes at the end of a copy beside the report (the parser runs it as part of the body).
  { cat "$page"; echo "$probe"; } >"$probed"
  verdict="$(run_browser --virtual-time-budget=5000 --dump-dom "file://$(realpath "$probed")" \
    | grep -o '<pre id="page-check">[^<]*' | sed 's/<pre id="page-check">//; s/&gt;/>/g; s/&lt;/</g; s/&amp;/\&/g' \
    || echo 'PAGE-CHECK FAIL: the probe did not run')"
  rm -f "$probed"
  run_browser --screenshot="$dir/report-${WIDTH}x${HEIGHT}.png" "file://$(realpath "$page")" >/dev/null
  echo "$page at ${WIDTH}×${HEIGHT}: $verdict (screenshot: $dir/report-${WIDTH}x${HEIGHT}.png)"
  case "$verdict" in "PAGE-CHECK OK") ;; *) status=1 ;; esac
done
exit $status
