--
-- rls: two partners, each sees only its own
--
-- Row-level security on every table with partner or customer data; SELECT
-- is granted to PUBLIC and the policies decide the rows:
--
--   agent             the role's own mapping
--   partner           the agent's partner
--   customer          customers the agent's partner has bought for
--   subscription,     the partner's subscriptions and their quantity
--   license_quantity  history (any agent role)
--   holder            (customer, service) rows the partner holds    (GA, AA)
--   holder_period     periods in which the partner held             (GA, AA)
--   assignment_log    changes from or to the partner                (GA, AA)
--   charge            the partner's charge lines                    (GA, BA)
--                     unassigned lines (no partner): operator only
--   usage,            nothing (operator only)
--   usage_month
--
-- A partner that sells to a customer but does not hold its overage learns
-- the holder from get_overage(): the holding partner and since, but not
-- the holding subscription (NULL), and error details of refused handoffs
-- do not name it either.
--
CREATE EXTENSION overage;
SET timezone = 'UTC';

INSERT INTO overage.service (service_id, name, unit_price)
	VALUES ('voice', 'Domestic calling', 0.02);
INSERT INTO overage.sku (product_id, sku_id, title, tags)
	VALUES ('E5', '0001', 'Microsoft 365 E5 with Calling Plan', 'IncludeOverage');
INSERT INTO overage.sku_service VALUES ('E5', '0001', 'voice', 120);
INSERT INTO overage.partner VALUES ('P1', 'Contoso Reseller'), ('P2', 'Fabrikam Reseller');
INSERT INTO overage.customer VALUES
	('C1', 'Tailspin', 'US'),	-- bought for by P1 and P2
	('C2', 'Wingtip', 'DE'),	-- by P2 only
	('C3', 'Litware', 'FR'),	-- by P1 only
	('C4', 'Proseware', 'NL');	-- by nobody

CREATE ROLE regress_overage_rls_p1;
CREATE ROLE regress_overage_rls_p1_sales;
CREATE ROLE regress_overage_rls_p2;
CREATE ROLE regress_overage_rls_nobody;
CREATE ROLE regress_overage_rls_p2_billing;
SELECT overage.add_agent('regress_overage_rls_p1', 'P1', 'global_admin');
SELECT overage.add_agent('regress_overage_rls_p1_sales', 'P1', 'sales_agent');
SELECT overage.add_agent('regress_overage_rls_p2', 'P2', 'admin_agent');
SELECT overage.add_agent('regress_overage_rls_p2_billing', 'P2', 'billing_admin');

-- P1 buys for C1 (first-in) and C3; P2 for C1 and C2 (first-in for C2)
SET ROLE regress_overage_rls_p1;
SELECT overage.purchase('P1', 'C1', 'E5', '0001', 10, '2026-01-01') IS NOT NULL AS bought;
SELECT overage.purchase('P1', 'C3', 'E5', '0001', 2, '2026-01-01') IS NOT NULL AS bought;
SET ROLE regress_overage_rls_p2;
SELECT overage.purchase('P2', 'C1', 'E5', '0001', 5, '2026-01-02') IS NOT NULL AS bought;
SELECT overage.purchase('P2', 'C2', 'E5', '0001', 3, '2026-01-02') IS NOT NULL AS bought;
RESET ROLE;

-- the handoff of C1: P1 sets None, P2 assigns to its overage subscription
SET ROLE regress_overage_rls_p1;
SELECT overage.release_overage('P1', 'C1', 'voice', '2026-01-10');
SET ROLE regress_overage_rls_p2;
SELECT overage.assign_overage('P2', 'C1', 'voice',
	(SELECT subscription_id FROM overage.subscription
	  WHERE customer_id = 'C1' AND kind = 'overage'), '2026-01-11');
RESET ROLE;

-- January's calls and its close.  C1's pool (15 licences x 120 minutes =
-- 108000 s) runs out on 01-06 while P1 holds the overage (64800 s for P1);
-- the call on 01-10 falls in the None gap (3600 s unassigned), the one on
-- 01-15 is P2's (3600 s).  C3 (P1, 14400 s pool) and C2 (P2, 21600 s) each
-- go over once.
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'voice', 'u1', '2026-01-05 08:00', 86400),
	('C1', 'voice', 'u1', '2026-01-06 08:00', 86400),
	('C1', 'voice', 'u2', '2026-01-10 12:00', 3600),
	('C1', 'voice', 'u3', '2026-01-15 12:00', 3600),
	('C3', 'voice', 'u4', '2026-01-20 08:00', 20000),
	('C2', 'voice', 'u5', '2026-01-20 08:00', 30000);
SELECT overage.close_month('2026-01-01') AS lines;

-- what a role sees of every table, one line per table
CREATE VIEW public.regress_overage_rls_seen WITH (security_invoker = true) AS
	SELECT 'agent' AS tbl, string_agg(role_name || ':' || coalesce(partner_id, '-'), ' ' ORDER BY role_name) AS rows_seen
	  FROM overage.agent
	UNION ALL
	SELECT 'partner', string_agg(partner_id, ' ' ORDER BY partner_id) FROM overage.partner
	UNION ALL
	SELECT 'customer', string_agg(customer_id, ' ' ORDER BY customer_id) FROM overage.customer
	UNION ALL
	SELECT 'subscription', string_agg(partner_id || '/' || customer_id || '/' || kind, ' '
									  ORDER BY partner_id, customer_id, kind)
	  FROM overage.subscription
	UNION ALL
	SELECT 'license_quantity', string_agg(s.partner_id || '/' || s.customer_id || '=' || q.quantity, ' '
										  ORDER BY s.partner_id, s.customer_id)
	  FROM overage.license_quantity q
	  JOIN overage.subscription s USING (subscription_id)
	UNION ALL
	SELECT 'holder', string_agg(customer_id || '/' || service_id || ':' || coalesce(partner_id, 'None'), ' '
								ORDER BY customer_id)
	  FROM overage.holder
	UNION ALL
	SELECT 'holder_period', string_agg(customer_id || ':' || coalesce(partner_id, 'None') || '@' || to_char(valid_from, 'MM-DD'), ' '
									   ORDER BY customer_id, valid_from)
	  FROM overage.holder_period
	UNION ALL
	SELECT 'assignment_log', string_agg(customer_id || ':' || coalesce(from_partner_id, 'None') || '->' || coalesce(to_partner_id, 'None'), ' '
										ORDER BY log_id)
	  FROM overage.assignment_log
	UNION ALL
	SELECT 'charge', string_agg(customer_id || ':' || coalesce(partner_id, 'unassigned') || '=' || overage_seconds, ' '
								ORDER BY customer_id, partner_id NULLS LAST)
	  FROM overage.charge
	UNION ALL
	SELECT 'billing_month', string_agg(to_char(month, 'YYYY-MM') || CASE WHEN closed_at IS NULL THEN ' open' ELSE ' closed' END, ' ')
	  FROM overage.billing_month
	UNION ALL
	SELECT 'sku (public price list)', string_agg(product_id, ' ') FROM overage.sku;
GRANT SELECT ON public.regress_overage_rls_seen TO PUBLIC;

-- the operator (superuser) sees everything
SELECT * FROM public.regress_overage_rls_seen;

-- P1's global admin: its partner, its customers C1 and C3, its
-- subscriptions; holder rows only for C3 (it released C1); the C1 history
-- up to its release
SET ROLE regress_overage_rls_p1;
SELECT * FROM public.regress_overage_rls_seen;
RESET ROLE;

-- P2's admin agent: the mirror image
SET ROLE regress_overage_rls_p2;
SELECT * FROM public.regress_overage_rls_seen;
RESET ROLE;

-- P1's sales agent: subscriptions yes, overage holders and their history no
SET ROLE regress_overage_rls_p1_sales;
SELECT * FROM public.regress_overage_rls_seen;
RESET ROLE;

-- P2's billing admin: its partner's customers and subscriptions and its
-- charge lines (C1 after the handoff, C2), not P1's and not the unassigned
-- one; no overage holders
SET ROLE regress_overage_rls_p2_billing;
SELECT * FROM public.regress_overage_rls_seen;
RESET ROLE;

-- a role that is no agent sees the public price list (and the months) only
SET ROLE regress_overage_rls_nobody;
SELECT * FROM public.regress_overage_rls_seen;
RESET ROLE;

-- usage and usage_month are not readable by agents at all
SET ROLE regress_overage_rls_p1;
SELECT count(*) FROM overage.usage;
SELECT count(*) FROM overage.usage_month;
RESET ROLE;

-- the reconciliation files: each billing role gets its own partner's lines
SET ROLE regress_overage_rls_p1;
SELECT "PartnerId", "CustomerId", "SubscriptionDescription", "Quantity", "BillingPreTaxTotal"
  FROM overage.reconciliation('P1', '2026-01-01');
SET ROLE regress_overage_rls_p2_billing;
SELECT "PartnerId", "CustomerId", "SubscriptionDescription", "Quantity", "BillingPreTaxTotal"
  FROM overage.reconciliation('P2', '2026-01-01');
RESET ROLE;

-- GET of C1 by the non-holder P1: P2 holds it, the subscription is hidden;
-- by the holder P2: its own subscription is shown
SET ROLE regress_overage_rls_p1;
SELECT service_id, partner_id, subscription_id, since FROM overage.get_overage('C1');
SET ROLE regress_overage_rls_p2;
SELECT service_id, partner_id, subscription_id IS NOT NULL AS subscription_shown, since
  FROM overage.get_overage('C1');
RESET ROLE;
-- the operator sees the subscription too
SELECT service_id, partner_id, subscription_id IS NOT NULL AS subscription_shown, since
  FROM overage.get_overage('C1');

-- P1 trying to take C1 back, or to release it: the rule errors (OV002,
-- OV004) name the holding partner but not its subscription (dated in
-- February: January is closed, and a change dated in it would be OV006)
\set VERBOSITY default
\set SHOW_CONTEXT never
SET ROLE regress_overage_rls_p1;
SELECT overage.assign_overage('P1', 'C1', 'voice',
	(SELECT subscription_id FROM overage.subscription
	  WHERE customer_id = 'C1' AND kind = 'overage'), '2026-02-12');
SELECT overage.release_overage('P1', 'C1', 'voice', '2026-02-12');
RESET ROLE;

-- the operator gets the 1.0 error unchanged (its detail names the subscription)
\set VERBOSITY sqlstate
SELECT overage.release_overage('P1', 'C1', 'voice', '2026-02-12');
\set VERBOSITY default

-- reading past the policies: a WHERE clause on another partner's rows
-- finds nothing, and a leaky function in the query cannot see them either
-- (the policies' functions are evaluated before user predicates)
CREATE FUNCTION public.regress_overage_rls_peek(text) RETURNS boolean
LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
	RAISE NOTICE 'peek: %', $1;
	RETURN true;
END
$$;
SET ROLE regress_overage_rls_p1;
SELECT count(*) FROM overage.subscription WHERE partner_id = 'P2';
SELECT count(*) FROM overage.customer WHERE customer_id = 'C2';
SELECT count(*) FROM overage.charge WHERE partner_id = 'P2' OR partner_id IS NULL;
SELECT customer_id FROM overage.subscription
 WHERE public.regress_overage_rls_peek(partner_id || '/' || customer_id)
 ORDER BY 1;
RESET ROLE;

-- clean up
DROP VIEW public.regress_overage_rls_seen;
DROP FUNCTION public.regress_overage_rls_peek(text);
DROP EXTENSION overage;
DROP ROLE regress_overage_rls_p1, regress_overage_rls_p1_sales,
	regress_overage_rls_p2, regress_overage_rls_nobody,
	regress_overage_rls_p2_billing;
