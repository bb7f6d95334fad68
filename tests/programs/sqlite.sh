# tests/programs/sqlite.sh — the sqlite3 shell on a generated SQL workload:
# tables filled by recursive CTEs, indexes, joins, GROUP BY, window
# functions, updates and deletes, a large page cache, VACUUM and an
# integrity check, on a database file.  The query results must be the same
# under the system allocator and under tide.  sqlite3 allocates through
# malloc (its default memory subsystem).
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=sqlite3

need "$name" sqlite3 || exit 0
pt_setup "$name" || exit 0

# The workload, generated: a few fixed statements and many small ones.
{
    cat <<'EOF'
PRAGMA cache_size = -65536;
PRAGMA journal_mode = MEMORY;
PRAGMA synchronous = OFF;
CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, city TEXT, score REAL);
CREATE TABLE item(id INTEGER PRIMARY KEY, title TEXT, price INTEGER, tags TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, cust INTEGER REFERENCES customer(id),
                    item INTEGER REFERENCES item(id), qty INTEGER, note TEXT);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO customer SELECT i, 'cust' || i || substr('abcdefghij', 1 + i % 10), 'city' || (i % 97),
                            (i * 7919 % 1000) / 10.0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO item SELECT i, 'item-' || hex(randomblob(0)) || i || printf('%.*c', i % 60, 'x'),
                        (i * 104729) % 10000, 'tag' || (i % 13) || ',tag' || (i % 29) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000)
INSERT INTO orders SELECT i, 1 + (i * 31337) % 20000, 1 + (i * 7) % 5000, 1 + i % 9,
                          printf('%0*d', 1 + i % 200, i) FROM n;
COMMIT;
CREATE INDEX orders_cust ON orders(cust);
CREATE INDEX orders_item ON orders(item, qty);
CREATE INDEX customer_city ON customer(city, score);
SELECT count(*), sum(qty), sum(length(note)) FROM orders;
SELECT c.city, count(*) AS n, sum(o.qty * i.price) AS revenue
  FROM orders o JOIN customer c ON c.id = o.cust JOIN item i ON i.id = o.item
  GROUP BY c.city ORDER BY revenue DESC, c.city LIMIT 10;
SELECT i.tags, avg(o.qty), max(i.price), group_concat(DISTINCT o.qty)
  FROM item i JOIN orders o ON o.item = i.id
  GROUP BY i.tags ORDER BY i.tags LIMIT 15;
SELECT cust, total, rank FROM (
  SELECT cust, sum(qty) AS total, rank() OVER (ORDER BY sum(qty) DESC, cust) AS rank
    FROM orders GROUP BY cust) WHERE rank <= 10;
SELECT city, name, score FROM (
  SELECT city, name, score, row_number() OVER (PARTITION BY city ORDER BY score DESC, name) AS rn
    FROM customer) WHERE rn = 1 ORDER BY city LIMIT 20;
EOF
    # Many small statements: updates, deletes, inserts with long strings.
    for i in $(seq 1 400); do
        echo "UPDATE customer SET score = score + $((i % 7)), name = name || '$i' WHERE id % 400 = $i % 400;"
        echo "INSERT INTO item(title, price, tags) VALUES ('new$i' || printf('%.*c', $((i * 37 % 3000)), 'y'), $i, 'tag$((i % 5))');"
        if [ $((i % 10)) = 0 ]; then
            echo "DELETE FROM orders WHERE id % 997 = $i % 997;"
            echo "SELECT count(*), sum(qty) FROM orders WHERE cust BETWEEN $i AND $((i + 300));"
        fi
    done
    cat <<'EOF'
SELECT count(*), sum(length(title)), sum(price) FROM item;
SELECT sum(score), max(length(name)) FROM customer;
CREATE TABLE summary AS
  SELECT o.cust, c.city, count(*) AS n, group_concat(o.note, '') AS notes
    FROM orders o JOIN customer c ON c.id = o.cust GROUP BY o.cust;
SELECT count(*), sum(length(notes)), max(n) FROM summary;
SELECT city, sum(n) FROM summary GROUP BY city HAVING sum(n) > 1500 ORDER BY 2 DESC, 1 LIMIT 5;
DELETE FROM orders WHERE qty > 6;
VACUUM;
PRAGMA integrity_check;
SELECT count(*) FROM orders;
EOF
} >"$PT_TMP/work.sql"

run_db() {  # run_db sys|tide
    rm -f "$PT_TMP/$1.db"
    "run_$1" "$PT_TMP/$1.log" sqlite3 -batch -bail "$PT_TMP/$1.db" <"$PT_TMP/work.sql" >"$PT_TMP/$1.out" 2>"$PT_TMP/$1.err"
}
pt_compare "$name" sqlite3 "the query results" 'sqlite3' run_db || exit 0
if ! grep -qx 'ok' "$PT_TMP/tide.out"; then
    fail "$name" "no 'ok' from PRAGMA integrity_check under tide"
    exit 0
fi
pass "$name"
