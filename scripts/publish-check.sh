#!/usr/bin/env bash
# usage: bash scripts/publish-check.sh
# Would every library crate publish, and is what its manifest promises true? CI runs
# this (.ci/run); run it yourself before a release or after touching a manifest.
#
# The crates checked are found, not listed: every workspace package whose `publish` is
# not false (cargo metadata), ordered so that each comes after the workspace crates it
# depends on. Checks, in order (one line each: ok / FAILED / SKIPPED):
#   metadata   each crate declares description, license, rust-version, readme,
#              keywords (<= 5, each as crates.io accepts), categories (<= 5) and
#              documentation/homepage/repository;
#              LICENSE-MIT and LICENSE-APACHE sit in its directory (same text as the
#              root's); its README starts with a title, closes its code fences and,
#              while no `repository` is set, has no relative links (crates.io could not
#              resolve them); CHANGELOG.md has an entry for its version.
#   package    `cargo package` of all of them in one call, in dependency order: each
#              .crate is built from its packaged form, against the packaged forms of
#              the others (cargo's local overlay registry); then each .crate must hold
#              Cargo.toml, its README and both licence texts. Prints the sizes.
#   msrv       for each declared rust-version: installs that toolchain with rustup if
#              needed (minimal profile, bounded) and runs `cargo check --locked` of the
#              crates with all features, and with no default features where they have
#              a default. If the toolchain cannot be installed (no network) the check
#              is SKIPPED and reported as such; a rust-version that is no Rust release
#              fails.
#   minimal-versions
#              in a temporary copy whose workspace holds only these crates, without
#              their dev-dependencies (so other members and test-only dependencies
#              cannot raise the floor): `cargo +nightly update -Z minimal-versions`
#              (every dependency, transitive ones too, at its lowest allowed version),
#              then `cargo check` as above (stable). The repository's Cargo.lock is not
#              touched.
#   docs       `RUSTDOCFLAGS="-D warnings" cargo doc --no-deps` of the crates (stable).
#   docs.rs    each crate documented as docs.rs will: nightly, the features and
#              rustdoc-args of its [package.metadata.docs.rs], `--cfg docsrs`,
#              warnings denied.
# Output of each command: target/publish-check/<check>.log (its tail is printed on
# failure). The last line is `publish-check: N ok, N FAILED, N SKIPPED`; the exit status
# is non-zero when a check failed (a SKIPPED check does not fail it, but is printed).
# Env: PUBLISH_CHECK_NIGHTLY (default `nightly`), CARGO_TARGET_DIR (default ./target).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
NIGHTLY=${PUBLISH_CHECK_NIGHTLY:-nightly}
LOGS=$CARGO_TARGET_DIR/publish-check
mkdir -p "$LOGS"
start=$SECONDS
OK=0 FAILED=0 SKIPPED=0
SUMMARY=()

report() { # report ok|FAILED|SKIPPED CHECK TEXT
  local line
  line=$(printf 'publish-check: %-7s %-16s %s' "$1" "$2" "$3")
  echo "$line"
  SUMMARY+=("$line")
  case $1 in ok) OK=$((OK + 1)) ;; SKIPPED) SKIPPED=$((SKIPPED + 1)) ;; *) FAILED=$((FAILED + 1)) ;; esac
}

# run CHECK SECONDS COMMAND...: runs COMMAND (bounded) with its output in the log;
# returns its status, printing the log's tail when it failed.
run() {
  local check=$1 limit=$2
  shift 2
  echo "+ $*" >>"$LOGS/$check.log"
  if timeout "$limit" "$@" >>"$LOGS/$check.log" 2>&1; then
    return 0
  else
    local rc=$?
    [ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >>"$LOGS/$check.log"
    echo "--- last lines of $LOGS/$check.log:" >&2
    tail -n 40 "$LOGS/$check.log" >&2
    return $rc
  fi
}

# --- The crates -------------------------------------------------------------------
# One line per publishable crate, dependencies first:
#   name version dir rust-version has-default-feature(0/1)
cargo metadata --format-version 1 --no-deps >"$LOGS/metadata.json"
mapfile -t CRATES < <(python3 - "$LOGS/metadata.json" <<'EOF'
import json, os, sys
meta = json.load(open(sys.argv[1]))
root = meta["workspace_root"]
pkgs = {p["name"]: p for p in meta["packages"] if p["publish"] != []}
deps = {n: sorted({d["name"] for d in p["dependencies"]
                   if d["name"] in pkgs and d["kind"] in (None, "build")} - {n})
        for n, p in pkgs.items()}
order, done = [], set()
while len(order) < len(pkgs):
    ready = sorted(n for n in pkgs if n not in done and all(d in done for d in deps[n]))
    if not ready:
        sys.exit("publish-check: dependency cycle among " + ", ".join(sorted(set(pkgs) - done)))
    order += ready
    done |= set(ready)
for n in order:
    p = pkgs[n]
    d = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
    print(n, p["version"], d, p["rust_version"] or "-", int("default" in p["features"]))
EOF
)
[ ${#CRATES[@]} -gt 0 ] || { echo "publish-check: no publishable crate found" >&2; exit 1; }
NAMES=() PKG_ARGS=() NODEFAULT=()
for line in "${CRATES[@]}"; do
  read -r name _ _ _ has_default <<<"$line"
  NAMES+=("$name")
  PKG_ARGS+=(-p "$name")
  [ "$has_default" = 1 ] && NODEFAULT+=("$name")
done
echo "publish-check: crates, dependencies first: ${NAMES[*]}"
rm -f "$LOGS"/*.log

# `cargo check` of the crates as the msrv and minimal-versions checks run it: all
# features together, then each crate that has defaults without them.
check_crates() { # check_crates CHECK CARGO-ARGS...
  local check=$1 name
  shift
  run "$check" 900 cargo "$@" check "${PKG_ARGS[@]}" --all-features || return 1
  for name in "${NODEFAULT[@]}"; do
    run "$check" 600 cargo "$@" check -p "$name" --no-default-features || return 1
  done
}

# --- metadata -----------------------------------------------------------------------
t=$SECONDS
if problems=$(python3 - "$LOGS/metadata.json" "${NAMES[@]}" <<'EOF'
import filecmp, json, os, re, sys
meta = json.load(open(sys.argv[1]))
root = meta["workspace_root"]
pkgs = {p["name"]: p for p in meta["packages"]}
bad = []
for f in ("LICENSE-MIT", "LICENSE-APACHE", "CHANGELOG.md"):
    if not os.path.isfile(os.path.join(root, f)):
        bad.append(f"{f} missing at the workspace root")
changelog = open(os.path.join(root, "CHANGELOG.md")).read() if os.path.isfile(os.path.join(root, "CHANGELOG.md")) else ""
for name in sys.argv[2:]:
    p = pkgs[name]
    d = os.path.dirname(p["manifest_path"])
    for field in ("description", "license", "rust_version", "readme"):
        if not p.get(field):
            bad.append(f"{name}: no {field.replace('_', '-')}")
    if not (p.get("documentation") or p.get("homepage") or p.get("repository")):
        bad.append(f"{name}: none of documentation, homepage, repository")
    for field in ("keywords", "categories"):
        if not 1 <= len(p.get(field) or []) <= 5:
            bad.append(f"{name}: {field} must list 1 to 5 entries")
    for k in p.get("keywords") or []:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,19}", k):
            bad.append(f"{name}: keyword {k!r} is not one crates.io accepts (20 characters: letters, digits, _ - +)")
    for f in ("LICENSE-MIT", "LICENSE-APACHE"):
        here, top = os.path.join(d, f), os.path.join(root, f)
        if not os.path.isfile(here):
            bad.append(f"{name}: no {f} in {os.path.relpath(d, root)} (link it: ln -s <relative path to root>/{f})")
        elif os.path.isfile(top) and not filecmp.cmp(here, top, shallow=False):
            bad.append(f"{name}: {f} differs from the root's")
    if p.get("readme"):
        readme = os.path.join(d, p["readme"])
        if not os.path.isfile(readme):
            bad.append(f"{name}: readme {p['readme']} not found")
        else:
            text = open(readme).read()
            if not text.startswith("# "):
                bad.append(f"{name}: {p['readme']} does not start with a '# ' title")
            if sum(1 for l in text.splitlines() if l.lstrip().startswith("```")) % 2:
                bad.append(f"{name}: {p['readme']} has an unclosed code fence")
            if not p.get("repository"):
                for link in re.findall(r"\]\(([^)\s]+)", text):
                    if not re.match(r"[a-z][a-z0-9+.-]*:|#", link):
                        bad.append(f"{name}: {p['readme']} links to {link}, which crates.io cannot resolve without a repository")
    if not re.search(r"^## \[" + re.escape(p["version"]) + r"\]", changelog, re.M):
        bad.append(f"{name}: CHANGELOG.md has no '## [{p['version']}]' entry")
print("\n".join(bad))
EOF
) && [ -z "$problems" ]; then
  report ok metadata "${#NAMES[@]} crates ($((SECONDS - t))s)"
else
  echo "$problems" | sed 's/^/  /' >&2
  report FAILED metadata "$(echo "$problems" | grep -c . || true) problem(s) ($((SECONDS - t))s)"
fi

# --- package ------------------------------------------------------------------------
# --allow-dirty: this is a check, not a release; it must also run on a tree with
# uncommitted changes (the .crate records that it was dirty).
t=$SECONDS
# Cargo unpacks each packaged crate of the overlay into $CARGO_HOME/registry/src/<dir
# named after the overlay's path>/<name>-<version>/ and reuses that copy if it is there:
# on a machine that ran this before from the same path, the dependents would be built
# against the previous run's sources (stale, same version). These crates are ours and
# unpublished, so every unpacked copy of them is ours to drop.
CARGO_REGISTRY=${CARGO_HOME:-$HOME/.cargo}/registry
for line in "${CRATES[@]}"; do
  read -r name version _ <<<"$line"
  rm -rf "$CARGO_REGISTRY"/src/*/"$name-$version" "$CARGO_REGISTRY"/cache/*/"$name-$version.crate"
done
if run package 900 cargo package --allow-dirty "${PKG_ARGS[@]}"; then
  sizes=() missing=()
  for line in "${CRATES[@]}"; do
    read -r name version dir _ _ <<<"$line"
    crate=$CARGO_TARGET_DIR/package/$name-$version.crate
    if [ ! -f "$crate" ]; then missing+=("$name: no $crate"); continue; fi
    readme=$(python3 -c 'import json,sys; print(next(p["readme"] for p in json.load(open(sys.argv[1]))["packages"] if p["name"] == sys.argv[2]))' "$LOGS/metadata.json" "$name")
    listing=$(tar -tzf "$crate")
    for f in Cargo.toml "$readme" LICENSE-MIT LICENSE-APACHE; do
      grep -qx "$name-$version/$f" <<<"$listing" || missing+=("$name: $f not in the .crate")
    done
    sizes+=("$name $(stat -c %s "$crate") B ($(grep -c . <<<"$listing") files)")
  done
  for s in "${sizes[@]}"; do echo "publish-check:   packaged $s"; done
  if [ ${#missing[@]} -eq 0 ]; then
    report ok package "${#NAMES[@]} crates packaged and built from their .crate ($((SECONDS - t))s)"
  else
    printf '  %s\n' "${missing[@]}" >&2
    report FAILED package "files missing from the .crate ($((SECONDS - t))s)"
  fi
else
  report FAILED package "cargo package ($((SECONDS - t))s, log: $LOGS/package.log)"
fi

# --- msrv ---------------------------------------------------------------------------
msrv_check() { # msrv_check VERSION -p NAME...: the crates that declare VERSION
  local v=$1 name
  shift
  run msrv 900 cargo "+$v" check --locked "$@" --all-features || return 1
  for name in "${NODEFAULT[@]}"; do
    [[ " $* " == *" $name "* ]] || continue
    run msrv 600 cargo "+$v" check --locked -p "$name" --no-default-features || return 1
  done
}
mapfile -t VERSIONS < <(printf '%s\n' "${CRATES[@]}" | awk '{print $4}' | sort -u)
for v in "${VERSIONS[@]}"; do
  t=$SECONDS
  if [ "$v" = - ]; then
    report FAILED msrv "a crate declares no rust-version"
    continue
  fi
  # (Looked up in the list: `rustup run` may itself try to install, unbounded.)
  if ! rustup toolchain list | grep -q "^$v-" &&
     ! run msrv 240 rustup toolchain install "$v" --profile minimal; then
    if grep -q "nonexistent rust version" "$LOGS/msrv.log"; then
      report FAILED "msrv $v" "rust-version $v is not a Rust release"
    else
      report SKIPPED "msrv $v" "toolchain $v could not be installed (see $LOGS/msrv.log): NOT checked"
    fi
    continue
  fi
  sel=()
  for line in "${CRATES[@]}"; do
    read -r name _ _ rv _ <<<"$line"
    [ "$rv" = "$v" ] && sel+=(-p "$name")
  done
  if msrv_check "$v" "${sel[@]}"; then
    report ok "msrv $v" "$(rustup run "$v" rustc -V | cut -d' ' -f1-2): $((${#sel[@]} / 2)) crates check ($((SECONDS - t))s)"
  else
    report FAILED "msrv $v" "cargo +$v check ($((SECONDS - t))s, log: $LOGS/msrv.log)"
  fi
done

# --- minimal-versions ---------------------------------------------------------------
t=$SECONDS
if ! cargo "+$NIGHTLY" -V >/dev/null 2>&1; then
  report SKIPPED minimal-versions "no $NIGHTLY toolchain (cargo -Z minimal-versions needs it): NOT checked"
else
  copy=$(mktemp -d "${TMPDIR:-/tmp}/sockeye-minimal.XXXXXX")
  trap 'rm -rf "$copy"' EXIT
  # The sources as they are (tracked and untracked, not ignored; not deleted ones),
  # links kept.
  git ls-files -co --exclude-standard -z |
    while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
    xargs -0 cp -P --parents -t "$copy"
  dirs=()
  for line in "${CRATES[@]}"; do read -r _ _ dir _ _ <<<"$line"; dirs+=("$dir"); done
  python3 - "$copy" "${dirs[@]}" <<'EOF'
import re, sys
copy, dirs = sys.argv[1], sys.argv[2:]
path = f"{copy}/Cargo.toml"
s = open(path).read()
members = "members = [" + ", ".join(f'"{d}"' for d in dirs) + "]"
s = re.sub(r"(?ms)^default-members\s*=\s*\[.*?\]\n", "", s)
s, n = re.subn(r"(?ms)^members\s*=\s*\[.*?\]", lambda _: members, s, count=1)
assert n == 1, "no workspace members list in Cargo.toml"
open(path, "w").write(s)
for d in dirs:
    path = f"{copy}/{d}/Cargo.toml"
    s = open(path).read()
    # Drop the [dev-dependencies] and [target.'...'.dev-dependencies] tables.
    out, skip = [], False
    for line in s.splitlines(keepends=True):
        if line.startswith("["):
            skip = re.match(r"\[(target\..*\.)?dev-dependencies\]", line) is not None
        if not skip:
            out.append(line)
    open(path, "w").write("".join(out))
EOF
  if (cd "$copy" && run minimal-versions 300 cargo "+$NIGHTLY" update -Z minimal-versions &&
        check_crates minimal-versions); then
    report ok minimal-versions "lower bounds build: ${#NAMES[@]} crates check ($((SECONDS - t))s)"
  else
    report FAILED minimal-versions "($((SECONDS - t))s, log: $LOGS/minimal-versions.log)"
  fi
  rm -rf "$copy"
  trap - EXIT
fi

# --- docs ---------------------------------------------------------------------------
t=$SECONDS
if RUSTDOCFLAGS="-D warnings" run docs 600 cargo doc --no-deps "${PKG_ARGS[@]}"; then
  report ok docs "cargo doc -D warnings: ${#NAMES[@]} crates ($((SECONDS - t))s)"
else
  report FAILED docs "($((SECONDS - t))s, log: $LOGS/docs.log)"
fi

# --- docs.rs ------------------------------------------------------------------------
t=$SECONDS
if ! cargo "+$NIGHTLY" -V >/dev/null 2>&1; then
  report SKIPPED docs.rs "no $NIGHTLY toolchain (docs.rs builds with nightly): NOT checked"
else
  # name<TAB>cargo arguments<TAB>rustdoc arguments, from [package.metadata.docs.rs].
  mapfile -t DOCSRS < <(python3 - "$LOGS/metadata.json" "${NAMES[@]}" <<'EOF'
import json, shlex, sys
pkgs = {p["name"]: p for p in json.load(open(sys.argv[1]))["packages"]}
for name in sys.argv[2:]:
    m = ((pkgs[name].get("metadata") or {}).get("docs", {}) or {}).get("rs", {}) or {}
    args = []
    if m.get("all-features"): args.append("--all-features")
    if m.get("no-default-features"): args.append("--no-default-features")
    if m.get("features"): args += ["--features", ",".join(m["features"])]
    print(name, " ".join(args), shlex.join(m.get("rustdoc-args", [])), sep="\t")
EOF
)
  ok=1
  for line in "${DOCSRS[@]}"; do
    IFS=$'\t' read -r name args rustdoc <<<"$line"
    # shellcheck disable=SC2086 # the argument lists are split on purpose
    RUSTDOCFLAGS="--cfg docsrs $rustdoc -D warnings" \
      run docs.rs 600 cargo "+$NIGHTLY" doc --no-deps -p "$name" $args || { ok=0; break; }
  done
  if [ $ok = 1 ]; then
    report ok docs.rs "nightly, [package.metadata.docs.rs], --cfg docsrs: ${#NAMES[@]} crates ($((SECONDS - t))s)"
  else
    report FAILED docs.rs "$name ($((SECONDS - t))s, log: $LOGS/docs.rs.log)"
  fi
fi

echo
printf '%s\n' "${SUMMARY[@]}"
echo "publish-check: $OK ok, $FAILED FAILED, $SKIPPED SKIPPED in $((SECONDS - start))s"
[ "$FAILED" -eq 0 ]
