--
-- first_in: the first partner to buy an overage SKU for a customer gets
-- the overage of each service of that SKU
--
-- SPEC "Overage holder" rule 1: first-in happens only when the (customer,
-- service) has never had a holder.  A purchase never takes the overage from
-- anyone and never re-enables None.
--
SET timezone = 'UTC';
CREATE EXTENSION overage;

-- Test helpers, in schema t (dropped at the end).  Subscription ids are
-- random uuids, so the output shows names instead: the name a licence was
-- registered under with t.reg(), or "partner/customer/kind" for the
-- subscriptions that provisioning makes.  t.try() runs a statement and
-- prints "ok" or "SQLSTATE: message" (uuids in the message shown as names).
CREATE SCHEMA t;
CREATE TABLE t.names (id uuid PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE FUNCTION t.reg(n text, u uuid) RETURNS text LANGUAGE sql
	AS $$ INSERT INTO t.names VALUES (u, n) RETURNING name $$;
CREATE FUNCTION t.nm(u uuid) RETURNS text LANGUAGE sql STABLE AS $$
	SELECT coalesce((SELECT n.name FROM t.names n WHERE n.id = u),
					(SELECT s.partner_id || '/' || s.customer_id || '/' || s.kind
					   FROM overage.subscription s WHERE s.subscription_id = u),
					CASE WHEN u IS NOT NULL THEN 'unknown uuid' END) $$;
CREATE FUNCTION t.id(n text) RETURNS uuid LANGUAGE plpgsql STABLE AS $$
DECLARE u uuid;
BEGIN
	SELECT id INTO u FROM t.names WHERE name = n;
	IF u IS NULL THEN
		SELECT s.subscription_id INTO STRICT u FROM overage.subscription s
		 WHERE s.partner_id || '/' || s.customer_id || '/' || s.kind = n
		   AND s.status = 'active';
	END IF;
	RETURN u;
END $$;
CREATE FUNCTION t.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; m text[];
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	FOR m IN SELECT regexp_matches(msg, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', 'g') LOOP
		msg := replace(msg, m[1], t.nm(m[1]::uuid));
	END LOOP;
	RETURN st || ': ' || msg;
END $$;
-- the holder of each service of a customer, as get_overage returns it
CREATE FUNCTION t.holders(c text)
	RETURNS TABLE (service_id text, partner_id text, subscription text, since timestamptz)
	LANGUAGE sql AS $$
	SELECT g.service_id, g.partner_id, t.nm(g.subscription_id), g.since
	  FROM overage.get_overage(c) g ORDER BY 1 $$;
-- the audit log of a customer, in order
CREATE FUNCTION t.log(c text)
	RETURNS TABLE (service_id text, from_partner text, from_sub text,
				   to_partner text, to_sub text, at timestamptz, reason text)
	LANGUAGE sql AS $$
	SELECT l.service_id, l.from_partner_id, t.nm(l.from_subscription_id),
		   l.to_partner_id, t.nm(l.to_subscription_id), l.at, l.reason
	  FROM overage.assignment_log l WHERE l.customer_id = c ORDER BY l.log_id $$;
-- the holder history of a customer
CREATE FUNCTION t.periods(c text)
	RETURNS TABLE (service_id text, partner_id text, subscription text,
				   valid_from timestamptz, valid_to timestamptz)
	LANGUAGE sql AS $$
	SELECT p.service_id, p.partner_id, t.nm(p.subscription_id), p.valid_from, p.valid_to
	  FROM overage.holder_period p WHERE p.customer_id = c ORDER BY 1, 4 $$;
-- a fingerprint of everything the API writes, to show that a refused call
-- changed nothing
CREATE FUNCTION t.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(s::text, ',' ORDER BY s.subscription_id) FROM overage.subscription s),
		(SELECT string_agg(q::text, ',' ORDER BY q.subscription_id, q.valid_from) FROM overage.license_quantity q),
		(SELECT string_agg(h::text, ',' ORDER BY h.customer_id, h.service_id) FROM overage.holder h),
		(SELECT string_agg(p::text, ',' ORDER BY p.customer_id, p.service_id, p.valid_from) FROM overage.holder_period p),
		(SELECT string_agg(l::text, ',' ORDER BY l.log_id) FROM overage.assignment_log l))) $$;

-- The catalog: two services; an overage SKU with both (E5), an overage SKU
-- with domestic calling only (DOM), a SKU without the overage tag that
-- includes domestic calling (E3), and one without services (BASIC).
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('dom', 'Domestic calling', 0.02),
	('intl', 'International calling', 0.10);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'Telco;IncludeOverage'),
	('DOM', '0001', 'Domestic Calling Plan', 'IncludeOverage'),
	('E3', '0001', 'Microsoft 365 E3 with Calling Plan', 'Telco'),
	('BASIC', '0001', 'Microsoft 365 Business Basic', NULL);
INSERT INTO overage.sku_service (product_id, sku_id, service_id, minutes_per_license) VALUES
	('E5', '0001', 'dom', 120), ('E5', '0001', 'intl', 0),
	('DOM', '0001', 'dom', 120),
	('E3', '0001', 'dom', 120);
INSERT INTO overage.partner VALUES ('A', 'Alpha Reseller'), ('B', 'Beta Reseller'), ('C', 'Gamma Reseller');
INSERT INTO overage.customer VALUES ('c1', 'Contoso', 'US'), ('c2', 'Fabrikam', 'DE');

-- Rule 1, first-in: the first partner that buys an overage SKU for a
-- customer gets the overage of each service of that SKU, on its overage
-- subscription, at the instant of the purchase.  E5 has two services.
SELECT t.reg('A.e5', overage.purchase('A', 'c1', 'E5', '0001', 10, '2026-10-01 09:00+00'));
SELECT * FROM t.holders('c1');
SELECT * FROM t.log('c1');
SELECT * FROM t.periods('c1');

-- A second partner buying the same SKU for the same customer does not take
-- it: the first partner's purchase and assignment are respected.  B is
-- provisioned all the same (its own overage subscription exists).
SELECT t.reg('B.e5', overage.purchase('B', 'c1', 'E5', '0001', 50, '2026-10-02 09:00+00'));
SELECT * FROM t.holders('c1');
SELECT count(*) AS b_overage_subscriptions FROM overage.subscription
 WHERE partner_id = 'B' AND customer_id = 'c1' AND kind = 'overage';
SELECT count(*) AS log_rows FROM overage.assignment_log WHERE customer_id = 'c1';

-- First-in is per service: for customer c2, B buys DOM (domestic calling
-- only) first and gets domestic; A then buys E5 (domestic and
-- international): domestic stays with B, international has never had a
-- holder, so it goes to A.
SELECT t.reg('B.c2.dom', overage.purchase('B', 'c2', 'DOM', '0001', 5, '2026-10-03 09:00+00'));
SELECT * FROM t.holders('c2');
SELECT t.reg('A.c2.e5', overage.purchase('A', 'c2', 'E5', '0001', 5, '2026-10-04 09:00+00'));
SELECT * FROM t.holders('c2');
SELECT * FROM t.log('c2');

-- A purchase never re-enables None: A sets c1's domestic overage to None;
-- neither A's nor B's next purchase brings it back.  International, still
-- held by A, stays with A.
SELECT overage.release_overage('A', 'c1', 'dom', '2026-10-05 09:00+00');
SELECT t.reg('A.e5.more', overage.purchase('A', 'c1', 'E5', '0001', 1, '2026-10-06 09:00+00'));
SELECT t.reg('B.dom', overage.purchase('B', 'c1', 'DOM', '0001', 1, '2026-10-06 10:00+00'));
SELECT * FROM t.holders('c1');

-- Nor does a purchase undo an automatic release: all of B's licences for
-- c2 end, so c2's domestic overage goes to None (licence-ended); B buying
-- again later does not take it back.
SELECT overage.cancel(t.id('B.c2.dom'), '2026-10-07 09:00+00');
SELECT * FROM t.holders('c2');
SELECT t.reg('B.c2.dom2', overage.purchase('B', 'c2', 'DOM', '0001', 5, '2026-10-08 09:00+00'));
SELECT * FROM t.holders('c2');

-- A non-overage SKU never triggers first-in, even for a brand-new customer
-- and a service that has never had a holder; the later overage purchase
-- by another partner is then the first.
INSERT INTO overage.customer VALUES ('c3', 'Northwind', 'FR');
SELECT t.reg('C.c3.e3', overage.purchase('C', 'c3', 'E3', '0001', 9, '2026-10-09 09:00+00'));
SELECT * FROM t.holders('c3');
SELECT t.reg('B.c3.dom', overage.purchase('B', 'c3', 'DOM', '0001', 1, '2026-10-09 10:00+00'));
SELECT * FROM t.holders('c3');

-- The holder history so far: one open period per (customer, service), and
-- one audit row per change.
SELECT customer_id, service_id, count(*) AS periods,
	   count(*) FILTER (WHERE valid_to IS NULL) AS open_periods
  FROM overage.holder_period GROUP BY 1, 2 ORDER BY 1, 2;
SELECT customer_id, service_id, count(*) AS log_rows
  FROM overage.assignment_log GROUP BY 1, 2 ORDER BY 1, 2;

SET client_min_messages = warning;
DROP SCHEMA t CASCADE;
DROP EXTENSION overage;
