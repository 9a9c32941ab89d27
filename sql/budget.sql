--
-- budget: budgets (set_budget, remove_budget) and the store of alerts
-- (_raise_alerts), who may do what, who sees what.
--
--   set_budget / remove_budget    the partner's global admin and admin
--                                 agent, for a customer it has bought for;
--                                 the operator
--   budget rows                   every agent of the partner; operator
--   alert rows                    every agent of the partner its partner's
--                                 (both kinds); a customer admin its
--                                 customer's pool alerts; operator all
--
-- Every refusal shows its SQLSTATE and writes nothing.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
\i sql/include/holder_fixture.sql
GRANT USAGE ON SCHEMA t TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA t TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA t TO PUBLIC;

-- t.try with the DETAIL, and a fingerprint of budgets and alerts
CREATE FUNCTION t.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || msg || coalesce(' (' || nullif(det, '') || ')', '');
END $$;
CREATE FUNCTION t.budgets() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(b::text, ',' ORDER BY b.partner_id, b.customer_id) FROM overage.budget b),
		(SELECT string_agg(a::text, ',' ORDER BY a.alert_id) FROM overage.alert a))) $$;

-- Prices: domestic calling costs EUR in Germany (c2's market, written in
-- lower case on the customer to show the upper-case comparison); a GBP
-- price for the US starts only in 2099, not in effect now.
UPDATE overage.customer SET country = 'de' WHERE customer_id = 'c2';
INSERT INTO overage.customer VALUES ('c3', 'Northwind', 'US');
INSERT INTO overage.service_price VALUES
	('dom', 'DE', 'EUR', 0.018, '2020-01-01', NULL),
	('dom', 'US', 'GBP', 0.015, '2099-01-01', NULL);
-- A sells E5 (dom, intl) to c1 and c2, B the domestic plan (dom) to c2,
-- C only a SKU without services (BASIC) to c1; nobody sells to c3
SELECT t.reg('A.c1', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-03-01 00:00+00'));
SELECT t.reg('A.c2', overage.purchase('A', 'c2', 'E5', '0001', 10, '2026-03-01 00:00+00'));
SELECT t.reg('B.c2', overage.purchase('B', 'c2', 'DOM', '0001', 5, '2026-03-01 00:00+00'));
SELECT t.reg('C.c1', overage.purchase('C', 'c1', 'BASIC', '0001', 1, '2026-03-01 00:00+00'));

------------------------------------------------------------------------------
-- set, replace, remove (as the operator: the superuser running the test)
------------------------------------------------------------------------------

-- default thresholds; c1 is in the US: dom and intl at their own USD price
BEGIN;
SELECT overage.set_budget('A', 'c1', 500);
SELECT partner_id, customer_id, amount, currency, thresholds,
	   set_at = now() AS set_now, set_by = current_user AS set_by_caller
  FROM overage.budget;
COMMIT;
-- setting again replaces amount and thresholds, stored sorted
SELECT overage.set_budget('A', 'c1', 750.50, '{100,25,75.5}');
SELECT partner_id, customer_id, amount, currency, thresholds FROM overage.budget;
-- B sells only dom to c2 (market DE): EUR
SELECT overage.set_budget('B', 'c2', 200, '{90}');
-- C's SKU includes no service: every service's price for c1 counts (USD)
SELECT overage.set_budget('C', 'c1', 10, '{1,1000}');
SELECT partner_id, customer_id, amount, currency, thresholds
  FROM overage.budget ORDER BY 1, 2;
SELECT overage.remove_budget('C', 'c1');
SELECT partner_id, customer_id FROM overage.budget ORDER BY 1, 2;

------------------------------------------------------------------------------
-- refusals: each with its SQLSTATE, nothing written
------------------------------------------------------------------------------

CREATE TABLE t.refusals (n serial, stmt text);
INSERT INTO t.refusals (stmt) VALUES
	($$SELECT overage.set_budget(NULL, 'c1', 100)$$),
	($$SELECT overage.set_budget('A', NULL, 100)$$),
	($$SELECT overage.set_budget('A', 'c1', NULL)$$),
	($$SELECT overage.set_budget('A', 'c1', 100, NULL)$$),
	($$SELECT overage.set_budget('A', 'c1', 0)$$),
	($$SELECT overage.set_budget('A', 'c1', -1)$$),
	($$SELECT overage.set_budget('A', 'c1', 'NaN')$$),
	($$SELECT overage.set_budget('A', 'c1', 'Infinity')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{}')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{10,20,30,40,50,60}')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{{50,80},{90,100}}')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{50,NULL}')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{0,50}')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{-5}')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{1000.01}')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{NaN}')$$),
	($$SELECT overage.set_budget('A', 'c1', 100, '{80,50,80}')$$),
	($$SELECT overage.set_budget('Z', 'c1', 100)$$),
	($$SELECT overage.set_budget('A', 'c9', 100)$$),
	($$SELECT overage.set_budget('A', '', 100)$$),
	($$SELECT overage.set_budget('C', 'c3', 100)$$),
	($$SELECT overage.set_budget('A', 'c2', 100)$$),
	($$SELECT overage.remove_budget('C', 'c1')$$),
	($$SELECT overage.remove_budget(NULL, 'c1')$$),
	($$SELECT overage.remove_budget('A', 'c9')$$);
CREATE TABLE t.refused (n int, result text, unchanged boolean);
DO $$
DECLARE r record; before text; res text;
BEGIN
	FOR r IN SELECT * FROM t.refusals ORDER BY n LOOP
		before := t.budgets();
		res := t.err(r.stmt);
		INSERT INTO t.refused VALUES (r.n, res, t.budgets() = before);
	END LOOP;
END $$;
SELECT r.n, substr(r.stmt, 8) AS call, x.result, x.unchanged
  FROM t.refusals r JOIN t.refused x USING (n) ORDER BY r.n;
SELECT count(*) AS refusals, bool_and(unchanged) AS none_wrote,
	   bool_and(result <> 'ok') AS all_refused
  FROM t.refused;

------------------------------------------------------------------------------
-- who may set and remove: each role, each call in a transaction rolled
-- back, from the same budgets
------------------------------------------------------------------------------

CREATE ROLE regress_overage_bud_a_ga;	-- A's global admin
CREATE ROLE regress_overage_bud_a_aa;	-- A's admin agent
CREATE ROLE regress_overage_bud_a_sa;	-- A's sales agent
CREATE ROLE regress_overage_bud_a_ba;	-- A's billing admin
CREATE ROLE regress_overage_bud_b_ga;	-- another partner's global admin
CREATE ROLE regress_overage_bud_c1;		-- c1's customer admin
CREATE ROLE regress_overage_bud_c2;		-- c2's customer admin
CREATE ROLE regress_overage_bud_op;		-- operator
SELECT overage.add_agent('regress_overage_bud_a_ga', 'A', 'global_admin');
SELECT overage.add_agent('regress_overage_bud_a_aa', 'A', 'admin_agent');
SELECT overage.add_agent('regress_overage_bud_a_sa', 'A', 'sales_agent');
SELECT overage.add_agent('regress_overage_bud_a_ba', 'A', 'billing_admin');
SELECT overage.add_agent('regress_overage_bud_b_ga', 'B', 'global_admin');
SELECT overage.add_agent('regress_overage_bud_c1', NULL, 'customer_admin', 'c1');
SELECT overage.add_agent('regress_overage_bud_c2', NULL, 'customer_admin', 'c2');
SELECT overage.add_agent('regress_overage_bud_op', NULL, 'operator');

CREATE TABLE t.calls (n int, call text, stmt text);
INSERT INTO t.calls VALUES
	(1, 'set A c1',    $$SELECT overage.set_budget('A', 'c1', 900, '{80}')$$),
	(2, 'remove A c1', $$SELECT overage.remove_budget('A', 'c1')$$),
	(3, 'set A c3',    $$SELECT overage.set_budget('A', 'c3', 900)$$),
	(4, 'set A c9',    $$SELECT overage.set_budget('A', 'c9', 900)$$);
CREATE TABLE t.cells (role text, n int, call text, result text, unchanged boolean);
GRANT INSERT ON t.cells TO PUBLIC;
CREATE FUNCTION t.cell(r text, c t.calls) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	before text := t.budgets();
	after text;
	res text;
BEGIN
	BEGIN
		EXECUTE format('SET LOCAL ROLE %I', 'regress_overage_bud_' || r);
		res := t.try(c.stmt);
		RESET ROLE;
		after := t.budgets();
		RAISE EXCEPTION 'roll back' USING ERRCODE = 'P0001';
	EXCEPTION WHEN SQLSTATE 'P0001' THEN
		NULL;
	END;
	INSERT INTO t.cells VALUES (r, c.n, c.call,
		regexp_replace(res, 'regress_overage_bud_', '', 'g'), after = before);
END $$;
SELECT count(*) AS cells
  FROM (SELECT t.cell(r, c)
		  FROM unnest(ARRAY['a_ga', 'a_aa', 'op', 'a_sa', 'a_ba', 'b_ga', 'c1']) AS r,
			   t.calls c) x;
-- allowed (unchanged false: they wrote)
SELECT role, call, result, unchanged FROM t.cells WHERE result = 'ok' ORDER BY role, n;
-- refused: 42501 naming the rule (a customer A never bought for and one
-- that does not exist alike); the operator gets past authorization and
-- meets 55000 (A never bought for c3) and 23503 (no c9); nothing written
SELECT role, call, result, unchanged FROM t.cells WHERE result <> 'ok' ORDER BY role, n;

-- an admin agent sets A's budget for c1: set_by is the caller
SET ROLE regress_overage_bud_a_aa;
SELECT overage.set_budget('A', 'c1', 1000, '{50,80,100}');
RESET ROLE;
SELECT partner_id, customer_id, amount, currency, thresholds,
	   CASE WHEN set_by = current_user THEN '(the test''s superuser)' ELSE set_by END AS set_by
  FROM overage.budget ORDER BY 1, 2;

------------------------------------------------------------------------------
-- _raise_alerts: internal (the rating calls it as the owner)
------------------------------------------------------------------------------

SET ROLE regress_overage_bud_op;
SELECT t.try($$SELECT overage._raise_alerts('2026-03-01', '{pool}', '{A}', '{c1}', '{dom}',
	'{80}', '{960}', '{1200}', '{2026-03-05 10:00+00}')$$) AS operator_role_may_not;
RESET ROLE;

-- March: c1/dom reaches 80 % and 100 % of its 1200-minute pool (A holds
-- it); c2/dom, never assigned, reaches 80 % of 600 (partner NULL); A's
-- overage for c1 reaches 50 % of its 1000 budget: four stored
SELECT overage._raise_alerts('2026-03-01',
	'{pool,pool,pool,budget}', '{A,A,NULL,A}', '{c1,c1,c2,c1}', '{dom,dom,dom,NULL}',
	'{80,100,80,50}', '{960,1200,480,500.25}', '{1200,1200,600,1000}',
	'{2026-03-05 10:00+00,2026-03-09 08:30+00,2026-03-10 00:00+00,2026-03-12 17:45+00}') AS raised;
SELECT alert_id, month, kind, partner_id, customer_id, service_id, threshold, value,
	   limit_value, crossed_at, raised_at >= crossed_at AS raised_after
  FROM overage.alert ORDER BY alert_id;
-- the same four again (a re-rating): nothing stored, nothing announced
SELECT overage._raise_alerts('2026-03-01',
	'{pool,pool,pool,budget}', '{A,A,NULL,A}', '{c1,c1,c2,c1}', '{dom,dom,dom,NULL}',
	'{80,100,80,50}', '{961,1201,481,600}', '{1200,1200,600,1000}',
	'{2026-03-05 10:01+00,2026-03-09 08:31+00,2026-03-10 00:01+00,2026-03-12 17:46+00}') AS raised_again;
-- one alert twice in one call, and the NULL-partner one again: one stored
SELECT overage._raise_alerts('2026-03-01',
	'{budget,budget,pool}', '{B,B,NULL}', '{c2,c2,c2}', '{NULL,NULL,dom}',
	'{90,90,80}', '{180,181,480}', '{200,200,600}',
	'{2026-03-20 09:00+00,2026-03-20 09:05+00,2026-03-10 00:00+00}') AS raised_once;
-- the same (customer, service, threshold) with a holder is another alert
-- than without one; so is another month
SELECT overage._raise_alerts('2026-03-01', '{pool}', '{B}', '{c1}', '{intl}',
	'{80}', '{0}', '{0.5}', '{2026-03-21 00:00+00}') AS b_intl,
	   overage._raise_alerts('2026-04-01', '{pool}', '{A}', '{c1}', '{dom}',
	'{80}', '{960}', '{1200}', '{2026-04-02 00:00+00}') AS april;
-- nothing stored for an empty list
SELECT overage._raise_alerts('2026-03-01', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}') AS none;
-- known_new (the rating's pool alerts of groups never rated): inserted
-- plainly; one of them stored after all (c1/dom 80 % of March) sends the
-- whole call down the ON CONFLICT path, which skips it and stores the
-- others, each once
SELECT overage._raise_alerts('2026-03-01', '{pool,pool}', '{C,C}', '{c3,c3}', '{dom,dom}',
	'{80,100}', '{48,60}', '{60,60}', '{2026-03-22 00:00+00,2026-03-23 00:00+00}',
	known_new => '{t,t}') AS fresh_group,
	   overage._raise_alerts('2026-03-01', '{pool,pool}', '{A,C}', '{c1,c4}', '{dom,dom}',
	'{80,80}', '{960,48}', '{1200,60}', '{2026-03-05 10:00+00,2026-03-24 00:00+00}',
	known_new => '{t,t}') AS one_was_stored;
-- (an alert skipped takes an alert_id all the same: 5 to 8, 10, 11 and the
-- known_new attempt undone are gaps)
SELECT alert_id, month, kind, partner_id, customer_id, service_id, threshold, value, crossed_at
  FROM overage.alert ORDER BY alert_id;

-- what the rating must never pass: each refused, nothing stored
SELECT t.try(s) AS refused, t.budgets() = b.fp AS unchanged
  FROM (SELECT t.budgets() AS fp) b,
	   unnest(ARRAY[
	$$SELECT overage._raise_alerts('2026-03-01', '{pool,pool}', '{A}', '{c1}', '{dom}', '{80}', '{1}', '{2}', '{2026-03-05}')$$,
	$$SELECT overage._raise_alerts('2026-03-01', '{budget}', '{NULL}', '{c1}', '{NULL}', '{80}', '{1}', '{2}', '{2026-03-05}')$$,
	$$SELECT overage._raise_alerts('2026-03-01', '{budget}', '{A}', '{c1}', '{dom}', '{80}', '{1}', '{2}', '{2026-03-05}')$$,
	$$SELECT overage._raise_alerts('2026-03-01', '{pool}', '{A}', '{c1}', '{NULL}', '{80}', '{1}', '{2}', '{2026-03-05}')$$,
	$$SELECT overage._raise_alerts('2026-03-01', '{pool}', '{A}', '{c1}', '{dom}', '{80}', '{1}', '{2}', '{2026-04-01 00:00+00}')$$,
	$$SELECT overage._raise_alerts('2026-03-02', '{pool}', '{A}', '{c1}', '{dom}', '{80}', '{1}', '{2}', '{2026-03-05}')$$,
	$$SELECT overage._raise_alerts('2026-03-01', '{warn}', '{A}', '{c1}', '{dom}', '{80}', '{1}', '{2}', '{2026-03-05}')$$,
	$$SELECT overage._raise_alerts('2026-03-01', '{pool}', '{A}', '{c1}', '{dom}', '{0}', '{1}', '{2}', '{2026-03-05}')$$,
	$$SELECT overage._raise_alerts(NULL, '{pool}', '{A}', '{c1}', '{dom}', '{80}', '{1}', '{2}', '{2026-03-05}')$$
	]) AS s;

-- alerts are never changed: no UPDATE, DELETE, TRUNCATE, the owner's neither
SELECT t.err($$UPDATE overage.alert SET value = 0$$) AS "update",
	   t.err($$DELETE FROM overage.alert$$) AS "delete",
	   t.err($$TRUNCATE overage.alert$$) AS "truncate";

-- removing a budget keeps its alerts
SELECT count(*) AS a_alerts FROM overage.alert WHERE partner_id = 'A' AND kind = 'budget';
SELECT overage.remove_budget('A', 'c1');
SELECT count(*) AS a_alerts FROM overage.alert WHERE partner_id = 'A' AND kind = 'budget';
SELECT overage.set_budget('A', 'c1', 1000);

------------------------------------------------------------------------------
-- who sees what (row-level security)
------------------------------------------------------------------------------

-- alerts now: pool A/c1/dom 80, 100 (March), 80 (April); pool NULL/c2/dom
-- 80; budget A/c1 50; budget B/c2 90; pool B/c1/intl 80
CREATE FUNCTION t.sees(r text) RETURNS TABLE(budgets text, pool_alerts bigint, budget_alerts bigint)
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	RETURN QUERY
	SELECT (SELECT string_agg(b.partner_id || '/' || b.customer_id, ', ' ORDER BY b.partner_id, b.customer_id)
			  FROM overage.budget b),
		   (SELECT count(*) FROM overage.alert a WHERE a.kind = 'pool'),
		   (SELECT count(*) FROM overage.alert a WHERE a.kind = 'budget');
	RESET ROLE;
END $$;
BEGIN;
SELECT replace(r, 'regress_overage_bud_', '') AS role, s.*
  FROM unnest(ARRAY['regress_overage_bud_a_ga', 'regress_overage_bud_a_aa',
					'regress_overage_bud_a_sa', 'regress_overage_bud_a_ba',
					'regress_overage_bud_b_ga', 'regress_overage_bud_c1',
					'regress_overage_bud_c2', 'regress_overage_bud_op']) AS r,
	   t.sees(r) s;
COMMIT;
-- a customer admin reads its customer's pool alerts: which ones
SET ROLE regress_overage_bud_c1;
SELECT kind, partner_id, customer_id, service_id, threshold FROM overage.alert ORDER BY alert_id;
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
DROP ROLE regress_overage_bud_a_ga, regress_overage_bud_a_aa, regress_overage_bud_a_sa,
	regress_overage_bud_a_ba, regress_overage_bud_b_ga, regress_overage_bud_c1,
	regress_overage_bud_c2, regress_overage_bud_op;
