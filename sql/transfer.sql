--
-- transfer: the three-party transfer of a customer's overage (SPEC 1.2)
--
-- Another partner requests the overage of a (customer, service) that a
-- partner holds; the holding partner and the customer consent; at the
-- second consent the holder moves from the old partner straight to the new
-- partner's subscription, with no None period: a call starting at that
-- instant is the new partner's, and the month's lines of both partners add
-- up to the customer's overage.  Decline, withdraw, expiry and superseded
-- end a transfer for good.  Every refusal has its SQLSTATE and writes
-- nothing.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;
\set SHOW_CONTEXT never

-- Test helpers in schema t (see sql/include/holder_fixture.sql): t.try()
-- prints "ok" or "SQLSTATE: message" with uuids shown as names.
\i sql/include/holder_fixture.sql

-- t.refused(stmt): the error, and whether everything the API writes
-- (subscriptions, quantities, holders, periods, audit log, transfers) is
-- exactly as it was before the call
CREATE FUNCTION t.refused(stmt text, OUT result text, OUT unchanged boolean)
	LANGUAGE plpgsql AS $$
DECLARE
	before text := t.state();
BEGIN
	result := t.try(stmt);
	unchanged := t.state() = before;
END $$;
-- the transfers of a customer, every step
CREATE FUNCTION t.transfers(c text)
	RETURNS TABLE (service_id text, from_p text, to_p text, to_sub text,
				   reseller text, requested_at timestamptz, holder_at timestamptz,
				   customer_at timestamptz, expires_at timestamptz, status text,
				   closed_at timestamptz)
	LANGUAGE sql AS $$
	SELECT x.service_id, x.from_partner_id, x.to_partner_id, t.nm(x.to_subscription_id),
		   x.to_reseller_id, x.requested_at, x.holder_consent_at, x.customer_consent_at,
		   x.expires_at, x.status, x.closed_at
	  FROM overage.transfer x WHERE x.customer_id = c ORDER BY x.requested_at $$;

-- The scene: A was first for c1 (E5: dom and intl) and holds both; B and C
-- buy E5 for c1 later; D sells only E3 (no overage tag) to c1.  A holds
-- c2's dom (DOM).
INSERT INTO overage.partner VALUES ('D', 'Delta Reseller'), ('R', 'Rho Indirect Reseller');
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 10, '2026-10-01 10:00+00'));
SELECT t.reg('C.e5', overage.purchase('C', 'c1', 'E5', '0001', 1, '2026-10-01 10:30+00'));
SELECT t.reg('D.e3', overage.purchase('D', 'c1', 'E3', '0001', 1, '2026-10-01 11:00+00'));
SELECT t.reg('A.c2', overage.purchase('A', 'c2', 'DOM', '0001', 1, '2026-10-01 11:00+00'));
SELECT * FROM t.holders('c1');

------------------------------------------------------------------------------
-- Requests that are refused, each writing nothing
------------------------------------------------------------------------------
SELECT * FROM t.refused($$SELECT overage.request_transfer('A', 'c1', 'dom', t.id('A/c1/overage'), '2026-10-02 09:00+00')$$);	-- OV010: A holds it already
SELECT * FROM t.refused($$SELECT overage.request_transfer('D', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-02 09:00+00')$$);	-- OV001: D has no overage licence
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', 'dom', t.id('C/c1/overage'), '2026-10-02 09:00+00')$$);	-- OV003: C's subscription
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', 'dom', t.id('B.e5'), '2026-10-02 09:00+00')$$);			-- OV003: a licence
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-01 08:00+00')$$);	-- OV005: before A's first-in
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', 'fax', t.id('B/c1/overage'), '2026-10-02 09:00+00')$$);	-- 23503: unknown service
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-02 09:00+00', 'Z')$$);	-- 23503: unknown reseller
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-02 09:00+00', 'B')$$);	-- 22023: own reseller
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', NULL, t.id('B/c1/overage'), '2026-10-02 09:00+00')$$);		-- 22004
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', 'dom', t.id('B/c1/overage'), 'infinity')$$);				-- 22023
-- c2's dom is None after A releases it: nothing to transfer, assign instead
SELECT overage.release_overage('A', 'c2', 'dom', '2026-10-01 12:00+00');
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c2', 'dom', t.id('B/c1/overage'), '2026-10-02 09:00+00')$$);	-- OV010: None
SELECT * FROM t.refused($$SELECT overage.request_transfer('B', 'c1', 'dom', t.id('B/c1/overage'), NULL)$$);						-- 22004

------------------------------------------------------------------------------
-- The agreement: B asks for c1's intl; A and then the customer consent
------------------------------------------------------------------------------
CREATE ROLE regress_overage_tr_a;	-- A's global admin
CREATE ROLE regress_overage_tr_b;	-- B's admin agent
CREATE ROLE regress_overage_tr_c1;	-- c1's customer admin
SELECT overage.add_agent('regress_overage_tr_a', 'A', 'global_admin');
SELECT overage.add_agent('regress_overage_tr_b', 'B', 'admin_agent');
SELECT overage.add_agent('regress_overage_tr_c1', NULL, 'customer_admin', 'c1');
GRANT USAGE ON SCHEMA t TO PUBLIC;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA t TO PUBLIC;

SET ROLE regress_overage_tr_b;
SELECT t.reg('tr.intl', overage.request_transfer('B', 'c1', 'intl',
	(SELECT subscription_id FROM overage.subscription
	  WHERE partner_id = 'B' AND customer_id = 'c1' AND kind = 'overage'),
	'2026-10-05 00:00+00'));
-- a second request for the same (customer, service) while it is pending: OV009
SELECT t.try($$SELECT overage.request_transfer('B', 'c1', 'intl', (SELECT subscription_id FROM overage.subscription WHERE partner_id = 'B' AND customer_id = 'c1' AND kind = 'overage'), '2026-10-05 01:00+00')$$);
RESET ROLE;
SELECT * FROM t.refused($$SELECT overage.request_transfer('C', 'c1', 'intl', t.id('C/c1/overage'), '2026-10-05 01:00+00')$$);	-- OV009
SELECT * FROM t.transfers('c1');

-- a party that is neither: 22023; a consent before the request: OV005
SELECT * FROM t.refused(format($$SELECT overage.consent_transfer(%L, 'reseller', '2026-10-06 00:00+00')$$, t.id('tr.intl')));
SELECT * FROM t.refused(format($$SELECT overage.consent_transfer(%L, 'holder', '2026-10-04 00:00+00')$$, t.id('tr.intl')));
-- an unknown transfer: 23503 for the operator
SELECT * FROM t.refused($$SELECT overage.consent_transfer('5f0f5e3c-1b1a-4c57-9a52-6f4b8bde3e01', 'holder', '2026-10-06 00:00+00')$$);

-- A consents (the holding partner): still pending; again: no change
SET ROLE regress_overage_tr_a;
SELECT overage.consent_transfer(t.id('tr.intl'), 'holder', '2026-10-08 00:00+00');
SELECT overage.consent_transfer(t.id('tr.intl'), 'holder', '2026-10-08 01:00+00');
RESET ROLE;
SELECT * FROM t.transfers('c1');

-- the customer consents at 10-10 12:00: completed, the holder moves from
-- A's overage subscription to B's at that very instant
SET ROLE regress_overage_tr_c1;
SELECT overage.consent_transfer(t.id('tr.intl'), 'customer', '2026-10-10 12:00+00');
-- the customer admin reads its customer's overage (and only that)
SELECT service_id, partner_id, since FROM overage.get_overage('c1');
SELECT t.try($$SELECT * FROM overage.get_overage('c2')$$);
RESET ROLE;
SELECT * FROM t.transfers('c1');
SELECT * FROM t.holders('c1');
-- no None period between A and B: A's period ends where B's begins
SELECT * FROM t.periods('c1') WHERE service_id = 'intl';
-- one audit row, reason transfer, by the customer admin's role
SELECT l.service_id, l.from_partner_id, l.to_partner_id, l.at,
	   CASE WHEN l.reason = 'transfer' THEN l.by_role END AS by_role, l.reason
  FROM overage.assignment_log l WHERE l.customer_id = 'c1' AND l.service_id = 'intl'
 ORDER BY l.log_id;

-- a step on a transfer that left pending: OV009, nothing written
SELECT * FROM t.refused(format($$SELECT overage.consent_transfer(%L, 'holder', '2026-10-11 00:00+00')$$, t.id('tr.intl')));
SELECT * FROM t.refused(format($$SELECT overage.withdraw_transfer(%L, '2026-10-11 00:00+00')$$, t.id('tr.intl')));
-- a holder change to another partner outside a transfer is still OV002,
-- and a direct write claiming reason "transfer" without one is OV009
SELECT * FROM t.refused($$SELECT overage.assign_overage('A', 'c1', 'intl', t.id('A/c1/overage'), '2026-10-11 00:00+00')$$);
SELECT * FROM t.refused($$UPDATE overage.holder SET partner_id = 'B', subscription_id = t.id('B/c1/overage'), since = '2026-10-11 00:00+00', reason = 'transfer' WHERE customer_id = 'c1' AND service_id = 'dom'$$);

------------------------------------------------------------------------------
-- Billing: no unbilled gap.  intl has no allowance (0 minutes per licence),
-- so every second is overage:
--   10-05 10:00  60 s -> A (A holds it)
--   10-10 12:00 120 s -> B (starts at the instant of the second consent)
--   10-20 09:00 300 s -> B
-- lines: A 60 s (1 min, 0.10), B 420 s (7 min, 0.70); no unassigned line;
-- 60 + 420 = 480 s, the customer's overage.
------------------------------------------------------------------------------
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('c1', 'intl', 'u1', '2026-10-05 10:00+00', 60),
	('c1', 'intl', 'u2', '2026-10-10 12:00+00', 120),
	('c1', 'intl', 'u3', '2026-10-20 09:00+00', 300);
SELECT partner_id, customer_id, service_id, t.nm(subscription_id) AS subscription,
	   overage_seconds, quantity, amount
  FROM overage.preview_month('2026-10-01') WHERE customer_id = 'c1' AND service_id = 'intl';
SELECT sum(overage_seconds) AS billed_seconds,
	   (SELECT sum(duration_s) FROM overage.usage
		 WHERE customer_id = 'c1' AND service_id = 'intl') AS overage_seconds
  FROM overage.preview_month('2026-10-01')
 WHERE customer_id = 'c1' AND service_id = 'intl' AND partner_id IS NOT NULL;

------------------------------------------------------------------------------
-- Decline, withdraw, expiry, superseded
------------------------------------------------------------------------------
-- C asks for c1's dom; the customer declines
SELECT t.reg('tr.dom1', overage.request_transfer('C', 'c1', 'dom', t.id('C/c1/overage'), '2026-10-12 00:00+00'));
SET ROLE regress_overage_tr_c1;
SELECT overage.decline_transfer(t.id('tr.dom1'), 'customer', '2026-10-12 06:00+00');
RESET ROLE;
-- B asks; B withdraws
SET ROLE regress_overage_tr_b;
SELECT t.reg('tr.dom2', overage.request_transfer('B', 'c1', 'dom',
	(SELECT subscription_id FROM overage.subscription
	  WHERE partner_id = 'B' AND customer_id = 'c1' AND kind = 'overage'),
	'2026-10-13 00:00+00'));
SELECT overage.withdraw_transfer(t.id('tr.dom2'), '2026-10-13 06:00+00');
RESET ROLE;
-- C asks on 10-14; A consents on 10-15; the customer's consent comes at
-- 10-21, the expiry: only the expiry is recorded, 'expired' is returned
SELECT t.reg('tr.dom3', overage.request_transfer('C', 'c1', 'dom', t.id('C/c1/overage'), '2026-10-14 00:00+00'));
SELECT overage.consent_transfer(t.id('tr.dom3'), 'holder', '2026-10-15 00:00+00');
SELECT overage.consent_transfer(t.id('tr.dom3'), 'customer', '2026-10-21 00:00+00');
SELECT * FROM t.refused(format($$SELECT overage.decline_transfer(%L, 'customer', '2026-10-22 00:00+00')$$, t.id('tr.dom3')));	-- OV009
-- B asks on 10-22; A moves dom to its own Azure subscription: superseded
SELECT t.reg('tr.dom4', overage.request_transfer('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-22 00:00+00'));
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/azure_subscription'), '2026-10-23 00:00+00');
-- B asks again on 10-24 and B cancels the licence before the customer
-- consents: the completing consent is refused (OV001), nothing of it is
-- recorded, the transfer stays pending
SELECT t.reg('tr.dom5', overage.request_transfer('B', 'c1', 'dom', t.id('B/c1/overage'), '2026-10-24 00:00+00'));
SELECT overage.consent_transfer(t.id('tr.dom5'), 'holder', '2026-10-24 01:00+00');
SELECT overage.cancel(t.id('B.e5'), '2026-10-24 02:00+00');
SELECT * FROM t.refused(format($$SELECT overage.consent_transfer(%L, 'customer', '2026-10-24 03:00+00')$$, t.id('tr.dom5')));
-- A releases dom to None: the pending transfer is superseded
SELECT overage.release_overage('A', 'c1', 'dom', '2026-10-25 00:00+00');
SELECT * FROM t.transfers('c1');
-- an expired pending transfer does not block a new request: the request
-- records its expiry first (A assigns c1's dom again; C asks twice, eight
-- days apart)
SELECT overage.assign_overage('A', 'c1', 'dom', t.id('A/c1/overage'), '2026-10-25 01:00+00');
SELECT overage.request_transfer('C', 'c1', 'dom', t.id('C/c1/overage'), '2026-10-25 02:00+00') IS NOT NULL AS requested;
SELECT overage.request_transfer('C', 'c1', 'dom', t.id('C/c1/overage'), '2026-11-02 02:00+00') IS NOT NULL AS requested_again;
SELECT * FROM t.transfers('c1') WHERE requested_at >= '2026-10-25';

------------------------------------------------------------------------------
-- A completing consent dated in a closed month is refused (OV006) and
-- leaves the transfer pending; dated after it, it completes
------------------------------------------------------------------------------
SELECT overage.assign_overage('A', 'c2', 'dom', t.id('A/c2/overage'), '2026-10-26 00:00+00');
SELECT t.reg('C.c2', overage.purchase('C', 'c2', 'DOM', '0001', 1, '2026-10-26 00:00+00'));
SELECT t.reg('tr.c2x', overage.request_transfer('C', 'c2', 'dom', t.id('C/c2/overage'), '2026-10-26 01:00+00'));
SELECT overage.consent_transfer(t.id('tr.c2x'), 'customer', '2026-10-27 00:00+00');
SELECT overage.close_month('2026-10-01') > 0 AS closed;
SELECT * FROM t.refused(format($$SELECT overage.consent_transfer(%L, 'holder', '2026-10-28 00:00+00')$$, t.id('tr.c2x')));
SELECT overage.consent_transfer(t.id('tr.c2x'), 'holder', '2026-11-01 00:00+00');
SELECT * FROM t.transfers('c2');
SELECT * FROM t.holders('c2');

-- what verify() says of all this
SELECT check_name, ok FROM overage.verify();

RESET ROLE;
SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
DROP ROLE regress_overage_tr_a, regress_overage_tr_b, regress_overage_tr_c1;
