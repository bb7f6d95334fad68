# tests/programs/php.sh — Debian's php (php8.2-cli), which loads its
# extensions (pdo.so, pdo_sqlite.so, phar.so, ...) with
# dlopen(RTLD_DEEPBIND): `php -v`, then a script that builds large arrays
# and strings, encodes and decodes JSON, fills and queries an SQLite
# database through PDO and the SQLite3 class, and forks children with
# pcntl_fork that report through files and their exit status.  Output and
# exit status (the script ends with exit(7)) must be the same under the
# system allocator and under tide; the script runs twice, with PHP's own
# allocator for request memory (the default) and with USE_ZEND_ALLOC=0,
# where every allocation of PHP's goes to malloc.  Before src/glibc.c,
# `tide-run php -v` died of SIGSEGV inside glibc's free (issue 20).
# th-timeout: 400
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=php

need "$name" php || exit 0
if ! php -m 2>/dev/null | grep -qx pdo_sqlite || ! php -m 2>/dev/null | grep -qx pcntl; then
    skip "$name" "php's pdo_sqlite or pcntl extension is not installed (php8.2-sqlite3)"
    exit 0
fi
pt_setup "$name" || exit 0

# php -v: what failed first.
for how in sys tide; do
    "run_$how" "$PT_TMP/$how-v.log" php -v >"$PT_TMP/$how-v.out" 2>"$PT_TMP/$how-v.err"
    echo $? >"$PT_TMP/$how-v.status"
done
ran_ok "$name" "php -v under the system allocator" "$(cat "$PT_TMP/sys-v.status")" "$PT_TMP/sys-v.err" || exit 0
ran_ok "$name" "php -v under tide" "$(cat "$PT_TMP/tide-v.status")" "$PT_TMP/tide-v.err" || exit 0
same_output "$name" "php -v" "$PT_TMP/sys-v.out" "$PT_TMP/tide-v.out" || exit 0

cat >"$PT_TMP/work.php" <<'PHP'
<?php
// Large arrays, JSON, PDO with SQLite, the SQLite3 class, regular
// expressions and pcntl_fork; everything printed is deterministic.
function out(...$a) { echo implode(' ', array_map(fn($x) => is_array($x) ? json_encode($x) : (string)$x, $a)), "\n"; }
mt_srand(42);
$h = hash_init('sha256');

// Large arrays: packed, hashes, nested, sorted, sliced, spliced.
$ints = range(1, 400000);
shuffle($ints);
sort($ints);
out('ints', count($ints), array_sum($ints), $ints[123456]);
$assoc = [];
for ($i = 0; $i < 200000; $i++) $assoc["key" . ($i * 7919 % 200003)] = str_repeat(chr(65 + $i % 26), $i % 40);
ksort($assoc);
out('assoc', count($assoc), md5(implode(',', array_slice(array_keys($assoc), 0, 5000))), strlen(implode('', $assoc)));
$nested = [];
for ($i = 0; $i < 50000; $i++) $nested[$i % 997][] = ['id' => $i, 'name' => "n$i", 'tags' => array_fill(0, $i % 7, $i)];
$c = 0; foreach ($nested as $k => $v) $c += count($v);
out('nested', count($nested), $c);
$m = array_map(fn($x) => $x * 3 % 1000, $ints);
$f = array_filter($m, fn($x) => $x % 2 == 0);
out('map', count($f), array_sum($f), md5(serialize(array_slice($f, 0, 1000))));
array_splice($ints, 1000, 200000, range(1, 50000));
out('splice', count($ints), $ints[1000], $ints[60000]);
unset($ints, $m, $f);

// Strings: big ones, grown by appending, split and joined, regexes.
$s = '';
for ($i = 0; $i < 300000; $i++) $s .= dechex($i * 2654435761 % 4294967296) . ($i % 10 ? ' ' : "\n");
out('string', strlen($s), md5($s), substr_count($s, "\n"));
$words = preg_split('/\s+/', $s, -1, PREG_SPLIT_NO_EMPTY);
out('words', count($words), count(array_unique($words)));
out('regex', preg_match_all('/[a-f]{4,}/', $s), strlen(preg_replace('/([0-9]+)/', '<$1>', substr($s, 0, 200000))));
hash_update($h, $s);
unset($s, $words);

// JSON: nested documents, encoded, decoded, encoded again.
function doc($d) {
    if ($d == 0) { $r = mt_rand(0, 4); return [mt_rand(), "str" . mt_rand(0, 99999), 1.5 * mt_rand(0, 1000), null, true][$r]; }
    $n = mt_rand(0, 6); $a = [];
    if (mt_rand(0, 1)) { for ($i = 0; $i < $n; $i++) $a[] = doc($d - 1); }
    else { for ($i = 0; $i < $n; $i++) $a["k" . mt_rand(0, 999)] = doc($d - 1); }
    return $a;
}
$docs = []; for ($i = 0; $i < 1000; $i++) $docs[] = doc(5);
$json = json_encode($docs);
$back = json_decode($json, true);
out('json', strlen($json), md5($json), $back == $docs ? 'same' : 'different');
$json = json_encode(json_decode($json), JSON_PRETTY_PRINT);
out('json again', strlen($json), md5($json));
hash_update($h, $json);
unset($docs, $back, $json);

// PDO with SQLite: a database file, prepared inserts in a transaction,
// indexes, joins, aggregates, updates and deletes.
$db = getenv('WORKDIR') . '/pdo.db';
@unlink($db);
$pdo = new PDO("sqlite:$db");
$pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
$pdo->exec("PRAGMA synchronous = OFF"); $pdo->exec("PRAGMA journal_mode = MEMORY");
$pdo->exec('CREATE TABLE person(id INTEGER PRIMARY KEY, name TEXT, city INTEGER, score REAL)');
$pdo->exec('CREATE TABLE item(id INTEGER PRIMARY KEY, owner INTEGER, label TEXT, qty INTEGER)');
$pdo->beginTransaction();
$ins = $pdo->prepare('INSERT INTO person VALUES (?, ?, ?, ?)');
for ($i = 1; $i <= 20000; $i++) $ins->execute([$i, "person$i" . str_repeat('x', $i % 30), $i % 97, ($i * 7919 % 1000) / 10]);
$ins = $pdo->prepare('INSERT INTO item(owner, label, qty) VALUES (:o, :l, :q)');
for ($i = 1; $i <= 60000; $i++) $ins->execute([':o' => 1 + $i * 31 % 20000, ':l' => "item" . $i % 500, ':q' => $i % 9]);
$pdo->commit();
$pdo->exec('CREATE INDEX item_owner ON item(owner)');
$rows = $pdo->query('SELECT p.city, count(*) n, sum(i.qty) q FROM person p JOIN item i ON i.owner = p.id
                     GROUP BY p.city ORDER BY q DESC, p.city LIMIT 10')->fetchAll(PDO::FETCH_ASSOC);
out('pdo top', $rows);
$all = $pdo->query('SELECT * FROM item ORDER BY id')->fetchAll(PDO::FETCH_NUM);
out('pdo all', count($all), md5(json_encode($all)));
$pdo->exec('UPDATE person SET score = score * 2 WHERE city < 10');
$pdo->exec('DELETE FROM item WHERE qty = 0');
out('pdo after', $pdo->query('SELECT count(*), sum(qty) FROM item')->fetch(PDO::FETCH_NUM),
    $pdo->query('SELECT round(sum(score), 2) FROM person')->fetchColumn());
$pdo = null;
unset($all, $rows);

// The SQLite3 class on the same file.
$lite = new SQLite3($db);
$r = $lite->query('SELECT label, count(*) FROM item GROUP BY label ORDER BY 2 DESC, 1 LIMIT 3');
while ($row = $r->fetchArray(SQLITE3_NUM)) out('sqlite3', $row);
$lite->close();

// pcntl_fork: children build arrays and JSON of their own and report
// through files and their exit status; the parent waits for each.
$kids = [];
for ($k = 0; $k < 4; $k++) {
    $pid = pcntl_fork();
    if ($pid == -1) { out('fork failed'); exit(1); }
    if ($pid == 0) {
        $a = [];
        for ($i = 0; $i < 15000 * ($k + 1); $i++) $a[] = ['k' => $k, 'i' => $i, 's' => str_repeat('z', $i % 17)];
        $j = json_encode($a);
        file_put_contents(getenv('WORKDIR') . "/child$k.txt", count($a) . ' ' . md5($j) . "\n");
        exit(10 + $k);
    }
    $kids[$k] = $pid;
}
foreach ($kids as $k => $pid) {
    pcntl_waitpid($pid, $status);
    out('child', $k, pcntl_wifexited($status) ? pcntl_wexitstatus($status) : 'signal', trim(file_get_contents(getenv('WORKDIR') . "/child$k.txt")));
}

out('digest', hash_final($h));
out('peak over 64 MiB', memory_get_peak_usage() > 64 << 20 ? 'yes' : 'no');
exit(7);
PHP

# run_script sys|tide ZEND_ALLOC: the script in a directory of its own.
run_script() {
    local how=$1 za=$2 dir=$PT_TMP/$1-$2
    mkdir -p "$dir"
    (cd "$dir" && WORKDIR=$dir USE_ZEND_ALLOC=$za "run_$how" "$PT_TMP/$how.log" php "$PT_TMP/work.php" \
        >"$dir/out" 2>"$dir/err")
    echo $? >"$dir/status"
}
for za in 1 0; do
    run_script sys $za
    run_script tide $za
    for how in sys tide; do
        st=$(cat "$PT_TMP/$how-$za/status")
        if [ "$st" != 7 ]; then
            fail "$name" "the script (USE_ZEND_ALLOC=$za) under $how: exit status $st, not 7: $(tail -n 3 "$PT_TMP/$how-$za/err" | tr '\n' '|' | cut -c1-300)"
            exit 0
        fi
    done
    same_output "$name" "the script's output (USE_ZEND_ALLOC=$za)" "$PT_TMP/sys-$za/out" "$PT_TMP/tide-$za/out" || exit 0
    if ! grep -q '^digest ' "$PT_TMP/tide-$za/out" || [ "$(grep -c '^child [0-3] 1[0-3] ' "$PT_TMP/tide-$za/out")" != 4 ]; then
        fail "$name" "the script (USE_ZEND_ALLOC=$za) did not finish: $(tail -n 2 "$PT_TMP/tide-$za/out" | tr '\n' '|')"
        exit 0
    fi
done
check_on_tide "$name" "$PT_TMP/sys.log" "$PT_TMP/tide.log" 'php[.0-9]*' || exit 0
pass "$name"
