CREATE TABLE t(id INTEGER PRIMARY KEY, grp INT, name TEXT, payload BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @ROWS@)
INSERT INTO t SELECT x, x % 97, 'name-' || (x * 7919 % 100003), zeroblob(x % 700) FROM c;
CREATE INDEX t_grp ON t(grp, name);
DELETE FROM t WHERE id % 5 = 0;
UPDATE t SET name = name || '-' || id WHERE id % 7 = 0;
SELECT count(*), sum(length(payload)), sum(id) FROM t;
SELECT grp, count(*), max(name), sum(length(payload)) FROM t GROUP BY grp ORDER BY grp LIMIT 12;
SELECT count(DISTINCT name) FROM t;
SELECT name FROM t WHERE grp = 42 ORDER BY name DESC LIMIT 5;
