--
-- restore: the triggers take pg_dump's reload of the tables as it is, and
-- nothing else
--
-- A restore runs CREATE EXTENSION, then loads every table's rows with
-- COPY in a session where pg_dump has set check_function_bodies and
-- row_security off (src/restore.c).  Such a COPY by a superuser is taken
-- as a restore: the rows are loaded as they are and no history is derived
-- from them.  Anything that merely resembles it meets every rule: an
-- INSERT in the same session, a COPY without pg_dump's settings, a COPY by
-- a role that is not a superuser.  (dump_restore.sh restores whole
-- databases with pg_restore, psql and pg_dumpall.)
--
SET timezone = 'UTC';
CREATE EXTENSION overage;
\i sql/include/holder_fixture.sql

SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('c1', 'dom', 'u1', '2026-10-02 09:00+00', 600);
SELECT overage.close_month('2026-10-01') AS lines;
SELECT t.state() AS before \gset

-- 1. Without pg_dump's settings, a superuser's COPY meets the rules: the
--    history tables refuse it (OV008), a call in the closed month is
--    refused (OV006).
COPY overage.holder_period (customer_id, service_id, partner_id, subscription_id, valid_from) FROM stdin;
c1	intl	\N	\N	2026-11-01 00:00:00+00
\.
COPY overage.usage (customer_id, service_id, user_id, started_at, duration_s) FROM stdin;
c1	dom	u9	2026-10-20 09:00:00+00	60
\.

-- 2. With pg_dump's settings, an INSERT is not a restore: the same
--    refusals, and the holder rules (C has no overage-enabled licence:
--    OV001).
SET check_function_bodies = off;
SET row_security = off;
SELECT t.try($$INSERT INTO overage.holder_period (customer_id, service_id, valid_from)
				VALUES ('c1', 'intl', '2026-11-01 00:00+00')$$);
SELECT t.try($$INSERT INTO overage.assignment_log (customer_id, service_id, at, by_role, reason)
				VALUES ('c1', 'intl', '2026-11-01 00:00+00', 'postgres', 'assign')$$);
SELECT t.try($$INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
				VALUES ('c1', 'dom', 'u9', '2026-10-20 09:00+00', 60)$$);
SELECT t.try($$INSERT INTO overage.charge VALUES ('2026-10-01', NULL, 'c1', 'dom', NULL,
				60, 1, 0.02, 0.02, 'USD')$$);
SELECT t.try($$UPDATE overage.holder SET partner_id = 'C', subscription_id = t.id('A/c1/overage'),
					  since = '2026-11-01 00:00+00' WHERE customer_id = 'c1' AND service_id = 'dom'$$);

-- 3. With pg_dump's settings, a COPY by a role that is not a superuser (an
--    operator allowed to ingest) is not a restore either, although the
--    usage trigger runs as the extension's owner: the call in the closed
--    month is refused.
CREATE ROLE regress_restore_ops;
SELECT overage.add_agent('regress_restore_ops', NULL, 'operator');
GRANT INSERT ON overage.usage TO regress_restore_ops;
SET ROLE regress_restore_ops;
COPY overage.usage (customer_id, service_id, user_id, started_at, duration_s) FROM stdin;
c1	dom	u9	2026-10-20 09:00:00+00	60
\.
RESET ROLE;
-- nothing of all that changed anything
SELECT t.state() = :'before' AS unchanged,
	   (SELECT count(*) FROM overage.usage) AS calls,
	   (SELECT count(*) FROM overage.charge) AS lines;

-- 4. A superuser's COPY with pg_dump's settings is a restore: rows are
--    loaded as they are, even a call in a closed month, and nothing is
--    derived from them (no period or audit row for the holder row, no
--    running figures for the call).  verify() then names what the
--    rows break.
SET check_function_bodies = off;
SET row_security = off;
COPY overage.holder (customer_id, service_id, partner_id, subscription_id, since, reason) FROM stdin;
c2	dom	\N	\N	2026-11-01 00:00:00+00	release
\.
COPY overage.usage (customer_id, service_id, user_id, started_at, duration_s) FROM stdin;
c1	dom	u9	2026-10-20 09:00:00+00	60
\.
RESET check_function_bodies;
RESET row_security;
SELECT customer_id, service_id, partner_id, since FROM overage.holder WHERE customer_id = 'c2';
SELECT count(*) AS periods_of_c2 FROM overage.holder_period WHERE customer_id = 'c2';
SELECT calls FROM overage.usage_month WHERE customer_id = 'c1' AND month = '2026-10-01';
SELECT check_name, detail FROM overage.verify() WHERE NOT ok;

DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
DROP ROLE regress_restore_ops;
