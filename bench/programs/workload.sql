-- workload.sql — an SQLite workload for bench/run.sh, run by the sqlite3
-- shell on an in-memory database.  bench/run.sh replaces @ROWS@ with the
-- row count.  Stresses: SQLite's page cache and B-tree pages (malloc'd for an
-- in-memory database), the sorter used to build indexes and for ORDER BY and
-- GROUP BY, and many short-lived strings and values in the VDBE.
-- The printed figures are the same under every allocator.
PRAGMA cache_size = -65536;
CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT, city INTEGER, age INTEGER, note TEXT);
CREATE TABLE cities(id INTEGER PRIMARY KEY, name TEXT);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
INSERT INTO cities SELECT i, 'city-' || (i * 37 % 1000) FROM n;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @ROWS@)
INSERT INTO people
SELECT i, 'name-' || (i * 7919 % 100003), i * 31 % 1000, i * 17 % 90,
       substr('lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod', 1 + i % 40)
FROM n;
COMMIT;
CREATE INDEX people_name ON people(name);
CREATE INDEX people_city_age ON people(city, age);
SELECT count(*), sum(length(note)) FROM people;
SELECT count(*) FROM (SELECT city, avg(age) AS a FROM people GROUP BY city HAVING a > 40);
SELECT sum(n) FROM (SELECT c.name, count(*) AS n FROM people p JOIN cities c ON p.city = c.id
                    WHERE p.age BETWEEN 20 AND 30 GROUP BY c.name ORDER BY n DESC LIMIT 50);
SELECT count(*) FROM people WHERE name LIKE 'name-1%';
SELECT sum(length(s)) FROM (SELECT group_concat(name, ',') AS s FROM people GROUP BY age);
UPDATE people SET note = note || ' ' || name WHERE age % 3 = 0;
DELETE FROM people WHERE age % 5 = 0;
SELECT count(*), sum(length(note)) FROM people;
SELECT count(DISTINCT name) FROM people ORDER BY 1;
