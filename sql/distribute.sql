--
-- distribute: overage.distribute() on a single node, without Citus
--
-- On the coordinator of a Citus cluster distribute() makes the extension's
-- tables Citus tables (test/citus/run.sh tests that, README "Scaling
-- out").  Here, without Citus, it must refuse cleanly (0A000) and change
-- nothing: not the foreign keys, primary keys or policies it would drop
-- and make again on a cluster, not the months, not a row.  It is the
-- operator's alone; a bad shard_count is refused before anything else.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;
\i sql/include/holder_fixture.sql
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));

-- what a cluster's distribute() would change, as it is now
CREATE TABLE t.shape AS
SELECT 'constraint' AS kind, conrelid::regclass::text AS rel, conname AS name,
	   pg_get_constraintdef(oid) AS def
  FROM pg_constraint WHERE connamespace = 'overage'::regnamespace
UNION ALL
SELECT 'policy', polrelid::regclass::text, polname, pg_get_expr(polqual, polrelid)
  FROM pg_policy WHERE polrelid::regclass::text LIKE 'overage.%'
UNION ALL
SELECT 'function', p.oid::regprocedure::text, '', array_to_string(p.proconfig, ',')
  FROM pg_proc p WHERE p.pronamespace = 'overage'::regnamespace;
CREATE TABLE t.months AS SELECT * FROM overage.billing_month;
CREATE TABLE t.before AS SELECT t.state() AS state;
SELECT count(*) > 0 AS has_keys_and_policies FROM t.shape WHERE kind <> 'function';

-- no Citus here
SELECT extname FROM pg_extension WHERE extname = 'citus';
-- (the error in full once, then SQLSTATE: message)
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT overage.distribute();
\set SHOW_CONTEXT errors
\set VERBOSITY terse
SELECT t.try('SELECT overage.distribute(32)');
-- nor does the per-node step run by itself
SELECT t.try('SELECT overage._citus_reshape()');
SELECT overage._distributed() AS distributed;

-- arguments: checked before Citus is looked for
SELECT t.try('SELECT overage.distribute(0)');
SELECT t.try('SELECT overage.distribute(NULL)');
SELECT t.try('SELECT overage.distribute(64001)');

-- an agent is refused before anything is looked at
CREATE ROLE regress_overage_distribute;
SELECT overage.add_agent('regress_overage_distribute', 'A', 'global_admin');
GRANT USAGE ON SCHEMA t TO regress_overage_distribute;
SET ROLE regress_overage_distribute;
SELECT t.try('SELECT overage.distribute()');
RESET ROLE;

-- nothing changed: the keys, the policies, the functions' settings, the
-- months (no month row made ahead), the rows
SELECT s.kind, s.rel, s.name FROM t.shape s
 WHERE NOT EXISTS (SELECT 1 FROM (
		SELECT 'constraint' AS kind, conrelid::regclass::text AS rel, conname AS name,
			   pg_get_constraintdef(oid) AS def
		  FROM pg_constraint WHERE connamespace = 'overage'::regnamespace
		UNION ALL
		SELECT 'policy', polrelid::regclass::text, polname, pg_get_expr(polqual, polrelid)
		  FROM pg_policy WHERE polrelid::regclass::text LIKE 'overage.%'
		UNION ALL
		SELECT 'function', p.oid::regprocedure::text, '', array_to_string(p.proconfig, ',')
		  FROM pg_proc p WHERE p.pronamespace = 'overage'::regnamespace) n
	 WHERE (n.kind, n.rel, n.name) = (s.kind, s.rel, s.name) AND n.def IS NOT DISTINCT FROM s.def);
SELECT (SELECT count(*) FROM t.shape) AS objects_before,
	   (SELECT count(*) FROM pg_constraint WHERE connamespace = 'overage'::regnamespace)
	   + (SELECT count(*) FROM pg_policy WHERE polrelid::regclass::text LIKE 'overage.%')
	   + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'overage'::regnamespace) AS objects_now;
SELECT (SELECT count(*) FROM t.months) AS months_before,
	   (SELECT count(*) FROM overage.billing_month) AS months_now;
SELECT t.state() = (SELECT state FROM t.before) AS rows_unchanged;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
DROP ROLE regress_overage_distribute;
