--
-- roles: the permission matrix, cell by cell
--
-- Roles of a partner's own organisation are mapped to the partner with
-- overage.add_agent(); every API function authorizes the role the session
-- acts as (SET ROLE included).  Refusals are insufficient_privilege (42501)
-- with a message that names the rule.
--
--   action                                  GA  AA  SA  BA  OP
--   purchase / set_quantity / cancel        x   x   x   -   x
--   assign_overage / release_overage        x   x   -   -   x
--   get_overage                             x   x   -   -   x
--   own subscriptions, pool_status          x   x   x   x   x
--   own charges, reconciliation             x   -   -   x   x
--   price list, manage agents, preview_month,
--   close_month, ingest into usage          -   -   -   -   x
--
-- Charges another role may not read are not refused but invisible (row-
-- level security): that cell shows "no rows visible".
--
CREATE EXTENSION overage;
SET timezone = 'UTC';

-- try(statement): 'ok', or 'SQLSTATE: message' (uuids masked); with
-- detail => true the detail too
CREATE SCHEMA roles_test;
GRANT USAGE ON SCHEMA roles_test TO PUBLIC;
CREATE FUNCTION roles_test.try(stmt text, detail boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st	text;
	msg	text;
	det	text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
							det = PG_EXCEPTION_DETAIL;
	IF detail AND det <> '' THEN
		msg := msg || ' / ' || det;
	END IF;
	RETURN regexp_replace(st || ': ' || msg,
		'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}',
		'<uuid>', 'g');
END
$$;
GRANT EXECUTE ON FUNCTION roles_test.try(text, boolean) TO PUBLIC;

-- the world: one calling service, an overage SKU and a plain one, two
-- partners, customer C1 bought for by both, C2 by P2 only
INSERT INTO overage.service (service_id, name, unit_price)
	VALUES ('voice', 'Domestic calling', 0.02);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage'),
	('BB', '0001', 'Microsoft 365 Business Basic', NULL);
INSERT INTO overage.sku_service VALUES ('E5', '0001', 'voice', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso Reseller'), ('P2', 'Fabrikam Reseller');
INSERT INTO overage.customer VALUES ('C1', 'Tailspin', 'US'), ('C2', 'Wingtip', 'DE');

-- ids the roles use, by label
CREATE TABLE roles_test.ids (label text PRIMARY KEY, id uuid);
GRANT SELECT ON roles_test.ids TO PUBLIC;
INSERT INTO roles_test.ids VALUES
	('p1_e5', overage.purchase('P1', 'C1', 'E5', '0001', 10, '2026-01-01')),
	('p2_e5', overage.purchase('P2', 'C1', 'E5', '0001', 5, '2026-01-01')),
	('p2_c2', overage.purchase('P2', 'C2', 'E5', '0001', 3, '2026-01-01'));
INSERT INTO roles_test.ids
	SELECT 'p1_azure', subscription_id FROM overage.subscription
	 WHERE partner_id = 'P1' AND kind = 'azure_subscription';
INSERT INTO roles_test.ids
	SELECT 'p1_overage', subscription_id FROM overage.subscription
	 WHERE partner_id = 'P1' AND kind = 'overage';
INSERT INTO roles_test.ids
	SELECT 'p2_azure', subscription_id FROM overage.subscription
	 WHERE partner_id = 'P2' AND customer_id = 'C1' AND kind = 'azure_subscription';
-- one plain licence of P1 per role, to change and cancel
INSERT INTO roles_test.ids
	SELECT 'lic_' || r, overage.purchase('P1', 'C1', 'BB', '0001', 1, '2026-01-01')
	  FROM unnest(ARRAY['ga', 'aa', 'sa', 'ba', 'op', 'none']) AS r;

-- P1 took the overage of C1 first-in
SELECT service_id, partner_id, since FROM overage.get_overage('C1');

-- January's calls of C1 exceed the pool (15 licences x 120 minutes = 108000
-- seconds) by 64800 seconds while P1 holds the overage; the month is closed
-- before the matrix, so there are charge lines of P1 to read
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C1', 'voice', 'u1', '2026-01-05 08:00', 86400),
		   ('C1', 'voice', 'u2', '2026-01-06 08:00', 86400);
SELECT overage.close_month('2026-01-01') AS lines;
SELECT month, partner_id, customer_id, overage_seconds, amount FROM overage.charge;

-- the roles (cluster-wide: unique names, dropped at the end)
CREATE ROLE regress_overage_roles_ga;
CREATE ROLE regress_overage_roles_aa;
CREATE ROLE regress_overage_roles_sa;
CREATE ROLE regress_overage_roles_ba;
CREATE ROLE regress_overage_roles_op;
CREATE ROLE regress_overage_roles_none;
SELECT overage.add_agent('regress_overage_roles_ga', 'P1', 'global_admin');
SELECT overage.add_agent('regress_overage_roles_aa', 'P1', 'admin_agent');
SELECT overage.add_agent('regress_overage_roles_sa', 'P1', 'sales_agent');
SELECT overage.add_agent('regress_overage_roles_ba', 'P1', 'billing_admin');
SELECT overage.add_agent('regress_overage_roles_op', NULL, 'operator');
-- regress_overage_roles_none is no agent at all
-- a non-superuser operator writes the price list with table privileges
-- the DBA grants it (the extension grants no writes to PUBLIC)
GRANT INSERT, UPDATE, DELETE ON overage.service, overage.sku,
	overage.sku_service, overage.partner, overage.customer
	TO regress_overage_roles_op;
-- INSERT on usage: the operator's ingest right (README); granted to the
-- five others too, by mistake, to show that row-level security still
-- refuses their rows
GRANT INSERT ON overage.usage TO regress_overage_roles_ga,
	regress_overage_roles_aa, regress_overage_roles_sa,
	regress_overage_roles_ba, regress_overage_roles_op,
	regress_overage_roles_none;

-- bad mappings
SELECT roles_test.try($$SELECT overage.add_agent('regress_overage_roles_none', 'P1', 'janitor')$$);
SELECT roles_test.try($$SELECT overage.add_agent('regress_overage_roles_none', NULL, 'sales_agent')$$);
SELECT roles_test.try($$SELECT overage.add_agent('regress_overage_roles_none', 'P1', 'operator')$$);
SELECT roles_test.try($$SELECT overage.add_agent('regress_overage_roles_none', 'P9', 'sales_agent')$$);
SELECT roles_test.try($$SELECT overage.add_agent('regress_overage_no_such_role', 'P1', 'sales_agent')$$);
SELECT roles_test.try($$SELECT overage.add_agent('regress_overage_roles_ga', 'P2', 'sales_agent')$$);
SELECT roles_test.try($$SELECT overage.remove_agent('regress_overage_roles_none')$$);
SELECT roles_test.try($$SELECT overage.add_agent('pg_signal_backend', 'P1', 'sales_agent')$$);

-- instants are finite (every API function that takes one)
SELECT roles_test.try($$SELECT overage.purchase('P1', 'C1', 'BB', '0001', 1, 'infinity')$$);
SELECT roles_test.try($$SELECT overage.release_overage('P1', 'C1', 'voice', '-infinity')$$);
SELECT roles_test.try($$SELECT overage.pool_status('C1', 'voice', 'infinity')$$);

SELECT role_name, partner_id, agent_role FROM overage.agent ORDER BY role_name;

-- The matrix.  The same statements for every role, in this order (the
-- changes are dated in April: January is closed above and the operator
-- closes February, and a change dated in a closed month is OV006):
CREATE TABLE roles_test.cell (n int PRIMARY KEY, cell text, stmt text);
GRANT SELECT ON roles_test.cell TO PUBLIC;
INSERT INTO roles_test.cell VALUES
 (1, 'purchase for own partner',
	$$SELECT overage.purchase('P1', 'C1', 'BB', '0001', 1, '2026-04-02')$$),
 (2, 'set_quantity of own licence',
	$$SELECT overage.set_quantity((SELECT id FROM roles_test.ids WHERE label = 'lic_' || substr(current_user, 23)), 2, '2026-04-03')$$),
 (3, 'cancel own licence',
	$$SELECT overage.cancel((SELECT id FROM roles_test.ids WHERE label = 'lic_' || substr(current_user, 23)), '2026-04-04')$$),
 (4, 'create_azure_subscription',
	$$SELECT overage.create_azure_subscription('P1', 'C1', '2026-04-05')$$),
 (5, 'assign_overage',
	$$SELECT overage.assign_overage('P1', 'C1', 'voice', (SELECT id FROM roles_test.ids WHERE label = 'p1_azure'), '2026-04-10'::timestamptz + (SELECT count(*) FROM overage.holder_period) * interval '1 hour')$$),
 (6, 'release_overage',
	$$SELECT overage.release_overage('P1', 'C1', 'voice', '2026-04-10'::timestamptz + (SELECT count(*) FROM overage.holder_period) * interval '1 hour')$$),
 (7, 'get_overage',
	$$SELECT overage.get_overage('C1')$$),
 (8, 'read own subscriptions',
	$$DO 'BEGIN IF NOT EXISTS (SELECT FROM overage.subscription WHERE partner_id = ''P1'') THEN RAISE ''no rows visible''; END IF; END'$$),
 (9, 'write the price list',
	$$INSERT INTO overage.service (service_id, name, unit_price) VALUES ('intl-' || current_user, 'International calling', 0.10)$$),
 (10, 'add_agent',
	$$SELECT overage.add_agent('regress_overage_roles_none', 'P1', 'sales_agent')$$),
 (11, 'remove_agent',
	$$SELECT overage.remove_agent('regress_overage_roles_none')$$),
 (12, 'pool_status of a customer bought for',
	$$SELECT overage.pool_status('C1', 'voice', '2026-01-31')$$),
 (13, 'read own charges',
	$$DO 'BEGIN IF NOT EXISTS (SELECT FROM overage.charge WHERE partner_id = ''P1'') THEN RAISE ''no rows visible''; END IF; END'$$),
 (14, 'reconciliation of own partner',
	$$SELECT overage.reconciliation('P1', '2026-01-01')$$),
 (15, 'preview_month',
	$$SELECT overage.preview_month('2026-02-01')$$),
 (16, 'ingest into usage',
	$$INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES ('C1', 'voice', current_user, '2026-02-10', 60)$$),
 (17, 'close_month',
	$$SELECT overage.close_month('2026-02-01')$$);

-- holder_period is read by the statements above to step the instants; let
-- every role read it for this test (it is a holder-history table that only
-- GA, AA and operator may read)
CREATE VIEW roles_test.periods AS SELECT count(*) FROM overage.holder_period;
UPDATE roles_test.cell SET stmt = replace(stmt, 'SELECT count(*) FROM overage.holder_period', 'SELECT * FROM roles_test.periods');
GRANT SELECT ON roles_test.periods TO PUBLIC;

\set matrix 'SELECT n, cell, roles_test.try(stmt) AS result FROM roles_test.cell ORDER BY n'

-- Global admin: everything of its partner, no operator actions
SET ROLE regress_overage_roles_ga;
SELECT * FROM overage.current_agent();
:matrix;
RESET ROLE;

-- Admin agent: the same as the global admin
SET ROLE regress_overage_roles_aa;
SELECT * FROM overage.current_agent();
:matrix;
RESET ROLE;

-- Sales agent: buys, changes and cancels; no overage GET or PUT
SET ROLE regress_overage_roles_sa;
SELECT * FROM overage.current_agent();
:matrix;
RESET ROLE;

-- Billing admin: reads; no buying, no overage
SET ROLE regress_overage_roles_ba;
SELECT * FROM overage.current_agent();
:matrix;
RESET ROLE;

-- Operator (a non-superuser platform role): everything
SET ROLE regress_overage_roles_op;
SELECT * FROM overage.current_agent();
:matrix;
RESET ROLE;

-- A role that is no agent: nothing
SET ROLE regress_overage_roles_none;
SELECT * FROM overage.current_agent();
:matrix;
RESET ROLE;

-- Only the operator's call was ingested, and the operator closed February
SELECT user_id, started_at, duration_s FROM overage.usage
 WHERE started_at >= '2026-02-01' ORDER BY usage_id;
SELECT overage.rate_pending() AS rated;
SELECT month, calls, seconds FROM overage.usage_month ORDER BY month;
SELECT month, closed_at IS NOT NULL AS closed, closed_by, lines
  FROM overage.billing_month WHERE month = '2026-02-01';

-- The audit log names the role that acted
SELECT to_partner_id, by_role, reason
  FROM overage.assignment_log ORDER BY log_id;

-- Another partner's id: refused, naming the rule, for every function that
-- takes a partner; another partner's subscription or customer gives the
-- same error as one that does not exist (nothing leaks whether it exists)
SET ROLE regress_overage_roles_ga;
SELECT cell, roles_test.try(stmt, detail => true) AS result FROM (VALUES
 (1, 'purchase for P2',
	$$SELECT overage.purchase('P2', 'C1', 'BB', '0001', 1, '2026-01-20')$$),
 (2, 'create_azure_subscription for P2',
	$$SELECT overage.create_azure_subscription('P2', 'C1', '2026-01-20')$$),
 (3, 'assign_overage as P2',
	$$SELECT overage.assign_overage('P2', 'C1', 'voice', (SELECT id FROM roles_test.ids WHERE label = 'p2_azure'), '2026-01-20')$$),
 (4, 'release_overage as P2',
	$$SELECT overage.release_overage('P2', 'C1', 'voice', '2026-01-20')$$),
 (5, 'set_quantity of P2''s licence',
	$$SELECT overage.set_quantity((SELECT id FROM roles_test.ids WHERE label = 'p2_e5'), 1, '2026-01-20')$$),
 (6, 'set_quantity of a missing subscription',
	$$SELECT overage.set_quantity('00000000-0000-0000-0000-000000000001', 1, '2026-01-20')$$),
 (7, 'cancel P2''s licence',
	$$SELECT overage.cancel((SELECT id FROM roles_test.ids WHERE label = 'p2_e5'), '2026-01-20')$$),
 (8, 'cancel a missing subscription',
	$$SELECT overage.cancel('00000000-0000-0000-0000-000000000001', '2026-01-20')$$),
 (9, 'assign_overage to P2''s subscription',
	$$SELECT overage.assign_overage('P1', 'C1', 'voice', (SELECT id FROM roles_test.ids WHERE label = 'p2_azure'), '2026-01-20')$$),
 (10, 'assign_overage to a missing subscription',
	$$SELECT overage.assign_overage('P1', 'C1', 'voice', '00000000-0000-0000-0000-000000000001', '2026-01-20')$$),
 (11, 'get_overage of P2''s customer',
	$$SELECT overage.get_overage('C2')$$),
 (12, 'get_overage of a missing customer',
	$$SELECT overage.get_overage('C9')$$),
 (13, 'assign_overage for P2''s customer',
	$$SELECT overage.assign_overage('P1', 'C2', 'voice', (SELECT id FROM roles_test.ids WHERE label = 'p1_azure'), '2026-01-20')$$),
 (14, 'NULL partner',
	$$SELECT overage.purchase(NULL, 'C1', 'BB', '0001', 1, '2026-01-20')$$),
 (15, 'pool_status of P2''s customer',
	$$SELECT overage.pool_status('C2', 'voice', '2026-01-20')$$),
 (16, 'pool_status of a missing customer',
	$$SELECT overage.pool_status('C9', 'voice', '2026-01-20')$$),
 (17, 'reconciliation of P2',
	$$SELECT overage.reconciliation('P2', '2026-01-01')$$),
 (18, 'reconciliation of a missing partner',
	$$SELECT overage.reconciliation('P9', '2026-01-01')$$),
 (19, 'NULL customer for pool_status',
	$$SELECT overage.pool_status(NULL, 'voice', '2026-01-20')$$)
) AS v(n, cell, stmt) ORDER BY n;
RESET ROLE;

-- nothing of P2 changed
SELECT s.partner_id, s.customer_id, s.kind, s.quantity, s.status, s.changed_at
  FROM overage.subscription s WHERE s.partner_id = 'P2' ORDER BY s.customer_id, s.kind;

-- the internal implementations and helpers are the owner's only
SET ROLE regress_overage_roles_ga;
SELECT roles_test.try($$SELECT overage._require_exists('partner', 'P2')$$);
SELECT roles_test.try($$SELECT overage._provision('P2', 'C1', '2026-01-20')$$);
SELECT roles_test.try($$SELECT overage._authorize('operate', NULL)$$);
SELECT roles_test.try($$UPDATE overage.holder SET partner_id = NULL$$);
SELECT roles_test.try($$INSERT INTO overage.agent VALUES ('regress_overage_roles_ga', NULL, 'operator', now(), 'x')$$);
SELECT roles_test.try($$SELECT overage._month_lines('2026-03-01')$$);
SELECT roles_test.try($$SELECT overage._rate_status('C1', 'voice', '2026-01-20')$$);
SELECT roles_test.try($$SELECT overage._rate_month('2026-01-01')$$);
SELECT roles_test.try($$SELECT count(*) FROM overage.usage$$);
SELECT roles_test.try($$SELECT count(*) FROM overage.usage_month$$);
SELECT roles_test.try($$UPDATE overage.charge SET amount = 0$$);
SELECT roles_test.try($$UPDATE overage.billing_month SET closed_at = NULL$$);
-- the months are public (no partner data in them)
SELECT month, closed_at IS NOT NULL AS closed FROM overage.billing_month ORDER BY month;
RESET ROLE;

-- every function of the extension an agent may execute, from the catalog:
-- the API, and the three helpers the row-level security policies call as
-- the querying role; nothing else
SELECT p.oid::regprocedure AS executable
  FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'overage')
   AND has_function_privilege('regress_overage_roles_ga', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;
-- the operator ingests, but reads usage only with a grant of its own
SET ROLE regress_overage_roles_op;
SELECT roles_test.try($$SELECT count(*) FROM overage.usage$$);
RESET ROLE;
-- ... and loads calls with COPY as well as INSERT (usage is guarded by a
-- statement trigger, not row-level security, under which COPY FROM is not
-- supported)
SET ROLE regress_overage_roles_op;
COPY overage.usage (customer_id, service_id, user_id, started_at, duration_s) FROM STDIN (FORMAT csv);
C1,voice,copy-by-operator,2026-03-02 10:00+00,90
C1,voice,copy-by-operator,2026-03-02 10:05+00,30
\.
RESET ROLE;
-- an agent that was granted INSERT by mistake cannot COPY either (42501)
SET ROLE regress_overage_roles_ga;
COPY overage.usage (customer_id, service_id, user_id, started_at, duration_s) FROM STDIN (FORMAT csv);
C1,voice,copy-by-agent,2026-03-02 11:00+00,90
\.
RESET ROLE;
-- two calls of the operator, none of the agent
SELECT user_id, started_at, duration_s FROM overage.usage
 WHERE started_at >= '2026-03-01' ORDER BY usage_id;
SELECT overage.rate_pending() AS rated;
SELECT month, calls, seconds FROM overage.usage_month WHERE month = '2026-03-01';

-- removing the mapping takes the rights away at once
SELECT overage.remove_agent('regress_overage_roles_aa');
SET ROLE regress_overage_roles_aa;
SELECT roles_test.try($$SELECT overage.get_overage('C1')$$);
RESET ROLE;

-- clean up
SET client_min_messages = warning;
DROP SCHEMA roles_test CASCADE;
REVOKE ALL ON overage.service, overage.sku, overage.sku_service,
	overage.partner, overage.customer FROM regress_overage_roles_op;
REVOKE ALL ON overage.usage FROM regress_overage_roles_ga,
	regress_overage_roles_aa, regress_overage_roles_sa,
	regress_overage_roles_ba, regress_overage_roles_op,
	regress_overage_roles_none;
DROP EXTENSION overage;
DROP ROLE regress_overage_roles_ga, regress_overage_roles_aa,
	regress_overage_roles_sa, regress_overage_roles_ba,
	regress_overage_roles_op, regress_overage_roles_none;
