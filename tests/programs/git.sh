# tests/programs/git.sh — git on a generated repository: init, many commits
# of many files (adds, edits, renames, deletes), branches and a merge, log
# with diffs, blame, grep, gc (pack-objects, repack: child processes), fsck.
# Author, committer and dates are fixed, so the object names and every
# output are the same in two runs: the outputs under the system allocator
# and under tide must be identical, and the probe must find tide in git.
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=git

need "$name" git || exit 0
pt_setup "$name" || exit 0

# The script both runs execute, in a fresh directory; $G is git, run as
# given (under tide or not: the environment carries LD_PRELOAD).
cat >"$PT_TMP/work.sh" <<'EOF'
set -e
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=$PWD TZ=UTC LC_ALL=C
export GIT_AUTHOR_NAME=Tide GIT_AUTHOR_EMAIL=tide@example.invalid
export GIT_COMMITTER_NAME=Tide GIT_COMMITTER_EMAIL=tide@example.invalid
t=1700000000
commit() {
    t=$((t + 3600))
    GIT_AUTHOR_DATE="@$t +0000" GIT_COMMITTER_DATE="@$t +0000" git commit -q -m "$1"
}
git init -q -b main repo
cd repo
git config gc.auto 0
git config core.fsync none
git config core.fsyncObjectFiles false
git config core.autocrlf false
mkdir -p src docs data
# One awk per commit writes its files (process starts are slow: few of them).
gen() {
    awk -v c="$1" 'BEGIN {
        for (f = 1; f <= 25; f++) {
            i = (c * 7 + f * 13) % 300; out = "src/f" i ".txt"
            printf "file %d, commit %d\n", i, c > out
            for (k = i * 3; k <= i * 3 + c % 50; k++) print k > out
            for (k = 1; k <= f % 9 + 1; k++) printf "line %d of a longer text that repeats with small changes\n", k > out
            close(out)
        }
        out = "docs/d" (c % 12) ".md"
        for (k = 1; k <= c; k++) printf "doc %d\n", k > out
        close(out)
        out = "data/blob" (c % 8) ".bin"; u = ""
        for (k = 0; k < 997; k++) u = u sprintf("%c", 65 + (c + k) % 26)
        for (k = 0; k < c; k++) printf "%s", u > out
        close(out)
    }'
}
for c in $(seq 1 40); do
    gen $c
    if [ $((c % 10)) = 5 ]; then git mv -k "src/f$((c * 3)).txt" "src/moved$c.txt"; fi
    if [ $((c % 10)) = 9 ]; then git rm -q --ignore-unmatch "src/f$((c * 5)).txt"; fi
    git add -A
    commit "commit $c"
    if [ $c = 20 ]; then git branch side; fi
done
git checkout -q side
for c in 1 2 3; do
    awk -v n=$((c * 100)) 'BEGIN { for (k = 1; k <= n; k++) printf "side %d\n", k }' >"side$c.txt"
    git add -A
    commit "side $c"
done
git checkout -q main
t=$((t + 3600))
GIT_AUTHOR_DATE="@$t +0000" GIT_COMMITTER_DATE="@$t +0000" git merge -q --no-ff -m "merge side" side
echo "== head"; git rev-parse HEAD HEAD~10 side
echo "== count"; git rev-list --count --all
echo "== log"; git log --stat --format='%H %an %ad %s' --date=iso-strict | head -n 400
echo "== log -p"; git log -p -n 8 --format='%H %s' -- src docs
echo "== diff"; git diff --stat HEAD~30 HEAD
echo "== shortlog"; git shortlog -sn --all
echo "== blame"; git blame -s src/moved15.txt | head -n 30; git blame -s -w docs/d3.md | head -n 30
echo "== grep"; git grep -c 'line 7' HEAD -- src | head -n 20
echo "== ls-tree"; git ls-tree -r -l HEAD | head -n 50
echo "== gc"; git gc -q --aggressive
git count-objects -v | grep -v -E '^size'
echo "== fsck"; git fsck --full --strict 2>&1
echo "== verify-pack"; git verify-pack -s .git/objects/pack/*.idx
echo "== archive"; git archive --format=tar HEAD | cksum
echo "== done"
EOF

run_git() {  # run_git sys|tide
    mkdir -p "$PT_TMP/$1"
    (cd "$PT_TMP/$1" && "run_$1" "$PT_TMP/$1.log" bash "$PT_TMP/work.sh") >"$PT_TMP/$1.out" 2>"$PT_TMP/$1.err"
}
pt_compare "$name" "the git script" "the git output" '/git' run_git || exit 0
pt_finished "$name" '^== done$' || exit 0
pass "$name"
