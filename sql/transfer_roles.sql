--
-- transfer_roles: who may take each step of a transfer, and who sees it
--
--   step                         holder's GA/AA  requester's GA/AA  customer admin  operator
--   request_transfer                  -               x                  -             x
--   consent/decline as holder         x               -                  -             x
--   consent/decline as customer       -               -                  x (its own)   x
--   withdraw_transfer                 -               x                  -             x
--
-- A customer admin of another customer, a sales agent, a billing admin and
-- a third partner's global admin get 42501 for every step, and a customer
-- admin for every step that is not its customer's consent or decline.  Row-
-- level security shows a transfer to the two partners and the customer
-- only.  Every refusal writes nothing.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;
\set SHOW_CONTEXT never
\i sql/include/holder_fixture.sql
GRANT USAGE ON SCHEMA t TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA t TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA t TO PUBLIC;

-- A holds c1's overage; B wants dom; C is a third partner selling to c1
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 10, '2026-10-01 10:00+00'));
SELECT t.reg('C.e5', overage.purchase('C', 'c1', 'E5', '0001', 10, '2026-10-01 10:00+00'));
SELECT t.reg('B.ov', t.id('B/c1/overage'));
SELECT t.reg('tr', overage.request_transfer('B', 'c1', 'dom', t.id('B.ov'), '2026-10-02 00:00+00'));

CREATE ROLE regress_overage_trr_a_ga;	-- holder A, global admin
CREATE ROLE regress_overage_trr_b_aa;	-- requester B, admin agent
CREATE ROLE regress_overage_trr_b_sa;	-- B's sales agent
CREATE ROLE regress_overage_trr_b_ba;	-- B's billing admin
CREATE ROLE regress_overage_trr_c_ga;	-- third partner C's global admin
CREATE ROLE regress_overage_trr_c1;		-- c1's customer admin
CREATE ROLE regress_overage_trr_c2;		-- c2's customer admin
CREATE ROLE regress_overage_trr_op;		-- operator
SELECT overage.add_agent('regress_overage_trr_a_ga', 'A', 'global_admin');
SELECT overage.add_agent('regress_overage_trr_b_aa', 'B', 'admin_agent');
SELECT overage.add_agent('regress_overage_trr_b_sa', 'B', 'sales_agent');
SELECT overage.add_agent('regress_overage_trr_b_ba', 'B', 'billing_admin');
SELECT overage.add_agent('regress_overage_trr_c_ga', 'C', 'global_admin');
SELECT overage.add_agent('regress_overage_trr_c1', NULL, 'customer_admin', 'c1');
SELECT overage.add_agent('regress_overage_trr_c2', NULL, 'customer_admin', 'c2');
SELECT overage.add_agent('regress_overage_trr_op', NULL, 'operator');

-- add_agent's rules for the new role
SELECT t.try($$SELECT overage.add_agent('regress_overage_trr_c2', 'A', 'customer_admin', 'c1')$$);
SELECT t.try($$SELECT overage.add_agent('regress_overage_trr_none', NULL, 'customer_admin')$$);
SELECT t.try($$SELECT overage.add_agent('regress_overage_trr_op', 'A', 'global_admin', 'c1')$$);
SELECT t.try($$SELECT overage.add_agent('regress_overage_trr_op', NULL, 'customer_admin', 'c9')$$);

-- every step as each role, in a transaction rolled back, so that each cell
-- starts from the same pending transfer; "ok" means allowed
CREATE TABLE t.steps (n int, step text, stmt text);
INSERT INTO t.steps VALUES
	(1, 'request',          $$SELECT overage.request_transfer('B', 'c1', 'intl', t.id('B.ov'), '2026-10-03 00:00+00')$$),
	(2, 'consent holder',   $$SELECT overage.consent_transfer(t.id('tr'), 'holder', '2026-10-03 00:00+00')$$),
	(3, 'consent customer', $$SELECT overage.consent_transfer(t.id('tr'), 'customer', '2026-10-03 00:00+00')$$),
	(4, 'decline holder',   $$SELECT overage.decline_transfer(t.id('tr'), 'holder', '2026-10-03 00:00+00')$$),
	(5, 'decline customer', $$SELECT overage.decline_transfer(t.id('tr'), 'customer', '2026-10-03 00:00+00')$$),
	(6, 'withdraw',         $$SELECT overage.withdraw_transfer(t.id('tr'), '2026-10-03 00:00+00')$$);
CREATE TABLE t.cells (role text, n int, step text, result text, unchanged boolean);
GRANT INSERT ON t.cells TO PUBLIC;

CREATE FUNCTION t.cell(r text, s t.steps) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	before text := t.state();
	after text;
	res text;
BEGIN
	BEGIN
		EXECUTE format('SET LOCAL ROLE %I', 'regress_overage_trr_' || r);
		res := t.try(s.stmt);
		RESET ROLE;
		after := t.state();
		RAISE EXCEPTION 'roll back' USING ERRCODE = 'P0001';
	EXCEPTION WHEN SQLSTATE 'P0001' THEN
		NULL;
	END;
	INSERT INTO t.cells VALUES (r, s.n, s.step,
		regexp_replace(res, 'regress_overage_trr_', '', 'g'), after = before);
END $$;
SELECT count(*) AS cells
  FROM (SELECT t.cell(r, s)
		  FROM unnest(ARRAY['a_ga', 'b_aa', 'c1', 'op', 'b_sa', 'b_ba', 'c_ga', 'c2']) AS r,
			   t.steps s) x;
-- allowed steps (unchanged false: they wrote)
SELECT role, step, result, unchanged
  FROM t.cells WHERE result = 'ok' ORDER BY role, n;
-- every refusal: 42501 with the rule, nothing written
SELECT role, step, result, unchanged
  FROM t.cells WHERE result <> 'ok' ORDER BY role, n;
SELECT count(*) AS refusals, bool_and(unchanged) AS none_wrote,
	   bool_and(result LIKE '42501:%') AS all_42501
  FROM t.cells WHERE result <> 'ok';

-- who sees the transfer (row-level security)
CREATE FUNCTION t.sees(r text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
	EXECUTE format('SET LOCAL ROLE %I', r);
	SELECT count(*) INTO n FROM overage.transfer;
	RESET ROLE;
	RETURN n;
END $$;
BEGIN;
SELECT replace(r, 'regress_overage_trr_', '') AS role, t.sees(r) AS transfers_seen
  FROM unnest(ARRAY['regress_overage_trr_a_ga', 'regress_overage_trr_b_aa',
					'regress_overage_trr_c1', 'regress_overage_trr_op',
					'regress_overage_trr_b_sa', 'regress_overage_trr_b_ba',
					'regress_overage_trr_c_ga', 'regress_overage_trr_c2']) AS r;
COMMIT;

-- what else a customer admin may do: read its own customer's overage and
-- pools (GET as JSON too); nothing else
SET ROLE regress_overage_trr_c1;
SELECT t.try($$SELECT overage.get_overage('c1')$$) AS get_overage_own,
	   t.try($$SELECT overage.get_overage_resource('c1')$$) AS resource_own,
	   t.try($$SELECT overage.pool_status('c1', 'dom', '2026-10-05')$$) AS pool_own;
SELECT t.try($$SELECT overage.get_overage('c2')$$) AS get_overage_other;
SELECT t.try($$SELECT overage.pool_status('c2', 'dom', '2026-10-05')$$) AS pool_other;
SELECT t.try($$SELECT overage.purchase('A', 'c1', 'E5', '0001', 1, '2026-10-05')$$) AS purchase;
SELECT t.try($$SELECT overage.assign_overage('A', 'c1', 'dom', t.id('B.ov'), '2026-10-05')$$) AS assign;
SELECT t.try($$SELECT overage.put_overage_resource('A', 'c1', '{"type": "dom", "overageEnabled": false}', '2026-10-05')$$) AS put;
SELECT t.try($$SELECT * FROM overage.reconciliation('A', '2026-10-01')$$) AS reconciliation;
SELECT t.try($$SELECT * FROM overage.preview_month('2026-10-01')$$) AS preview;
SELECT (SELECT count(*) FROM overage.holder) AS holder_rows,
	   (SELECT count(*) FROM overage.subscription) AS subscription_rows,
	   (SELECT count(*) FROM overage.customer) AS customer_rows,
	   (SELECT count(*) FROM overage.assignment_log) AS log_rows;
SELECT * FROM overage.current_agent();
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
DROP ROLE regress_overage_trr_a_ga, regress_overage_trr_b_aa, regress_overage_trr_b_sa,
	regress_overage_trr_b_ba, regress_overage_trr_c_ga, regress_overage_trr_c1,
	regress_overage_trr_c2, regress_overage_trr_op;
