-- A month of calls: usage ingest, live pool status, month close and the
-- partners' reconciliation files (1.2: Partner Center's daily rated usage
-- layout).  A customer that changes hands by the old None handoff (C-0007)
-- beside one that moves by transfer (C-0010): the transfer leaves no
-- unbilled gap.  Continues the database of 10-holder.sql.
SET timezone = 'UTC';
\pset footer off

\echo
\echo '== A month of generated calls: 3,000 more customers of Contoso and Fabrikam'
INSERT INTO overage.customer
SELECT format('C-%s', lpad(i::text, 4, '0')), format('Customer %s', i),
	   (ARRAY['SE', 'NO', 'DK', 'FI'])[1 + i % 4]
  FROM generate_series(1, 3000) i;
-- every customer has 1 to 5 E5 licences (120 minutes each) bought in September
SELECT count(overage.purchase(CASE WHEN i % 3 = 0 THEN 'P-FABRIKAM' ELSE 'P-CONTOSO' END,
							  format('C-%s', lpad(i::text, 4, '0')),
							  'CFQ7TTC0LF8Q', '0002', 1 + i % 5,
							  '2026-09-15 09:00+00'::timestamptz + i * interval '1 minute')) AS licences_bought
  FROM generate_series(1, 3000) i;

\echo '   every 50th customer: its holder sets Domestic Calling overage to None on Oct 10'
SELECT count(overage.release_overage(h.partner_id, h.customer_id, 'PSTN-DOM', '2026-10-10 00:00+00')) AS released
  FROM overage.holder h
 WHERE h.service_id = 'PSTN-DOM' AND h.customer_id ~ '^C-[0-9]{4}$'
   AND right(h.customer_id, 4)::int % 50 = 0;

\echo '   customer C-0007 changes hands mid-month: Contoso releases, Fabrikam buys and assigns'
SELECT overage.release_overage('P-CONTOSO', 'C-0007', 'PSTN-DOM', '2026-10-16 00:00+00');
SELECT overage.purchase('P-FABRIKAM', 'C-0007', 'CFQ7TTC0LF8Q', '0002', 2, '2026-10-16 00:05+00') IS NOT NULL AS bought;
SELECT overage.assign_overage('P-FABRIKAM', 'C-0007', 'PSTN-DOM', s.subscription_id, '2026-10-16 00:10+00')
  FROM overage.subscription s
 WHERE s.partner_id = 'P-FABRIKAM' AND s.customer_id = 'C-0007' AND s.kind = 'overage';

\echo '   customer C-0010 changes hands mid-month by transfer: Fabrikam buys and asks,'
\echo '   Contoso and the customer consent; the holder moves on Oct 16 at 00:00 exactly'
SELECT overage.purchase('P-FABRIKAM', 'C-0010', 'CFQ7TTC0LF8Q', '0002', 1, '2026-10-15 09:00+00') IS NOT NULL AS bought;
SELECT overage.request_transfer('P-FABRIKAM', 'C-0010', 'PSTN-DOM', s.subscription_id, '2026-10-15 10:00+00') AS c10_transfer
  FROM overage.subscription s
 WHERE s.partner_id = 'P-FABRIKAM' AND s.customer_id = 'C-0010' AND s.kind = 'overage' \gset
SELECT overage.consent_transfer(:'c10_transfer', 'holder', '2026-10-15 18:00+00') AS after_contoso,
	   overage.consent_transfer(:'c10_transfer', 'customer', '2026-10-16 00:00+00') AS after_customer;

\echo '   customer C-0011 gets 3 more licences mid-month (a bigger pool from Oct 14)'
SELECT overage.purchase('P-CONTOSO', 'C-0011', 'CFQ7TTC0LF8Q', '0002', 3, '2026-10-14 12:00+00') IS NOT NULL AS bought;

\echo '   Northwind, a new customer, calls for three days before Contoso sells it 2 licences on Oct 4'
INSERT INTO overage.customer VALUES ('C-NORTHWIND', 'Northwind Traders', 'SE');
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT 'C-NORTHWIND', 'PSTN-DOM', 'sales@C-NORTHWIND', d, 600
  FROM generate_series('2026-10-01 09:00+00'::timestamptz, '2026-10-03 18:00+00', interval '3 hours') d;
SELECT overage.purchase('P-CONTOSO', 'C-NORTHWIND', 'CFQ7TTC0LF8Q', '0002', 2, '2026-10-04 08:00+00') IS NOT NULL AS bought;

\echo '== Prices by market and date: Domestic Calling costs 0.012 in Sweden until Oct 15, then 0.014;'
\echo '   Norway pays 0.018 all month; every other market the service''s own 0.015 USD'
INSERT INTO overage.service_price VALUES
	('PSTN-DOM', 'SE', 'USD', 0.012, '2026-09-01', '2026-10-15'),
	('PSTN-DOM', 'SE', 'USD', 0.014, '2026-10-15', NULL),
	('PSTN-DOM', 'NO', 'USD', 0.018, '2026-09-01', NULL);
SELECT * FROM overage.service_price ORDER BY service_id, market, effective_from;

\echo '== Tailspin Toys'' call records from Microsoft Graph (getPstnCalls, test/data/graph_pstn_calls_sample.json)'
INSERT INTO overage.call_mapping VALUES
	('user_out', 'Domestic', 'PSTN-DOM'), ('user_out', 'International', 'PSTN-INTL'),
	('user_in', NULL, 'PSTN-DOM'), ('user_out_conf', 'Domestic', 'PSTN-DOM'),
	('user_out_transfer', 'Domestic', 'PSTN-DOM'), ('user_out_forwarding', 'International', 'PSTN-INTL'),
	('conf_in', NULL, 'PSTN-DOM'), ('conf_out', 'Domestic', 'PSTN-DOM');
SELECT * FROM overage.call_mapping ORDER BY 1, 2;
\set graph `cat ../data/graph_pstn_calls_sample.json`
SELECT * FROM overage.ingest_pstn_calls('C-TAILSPIN', :'graph');
\echo '   the collector retries the same response: every row is a duplicate, nothing is written'
SELECT * FROM overage.ingest_pstn_calls('C-TAILSPIN', :'graph');
SELECT u.service_id, p.call_type, coalesce(p.destination_context, '(none)') AS destination_context,
	   count(*) AS calls, sum(u.duration_s) / 60 AS minutes
  FROM overage.pstn_call p JOIN overage.usage u USING (usage_id)
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

\echo '   ingest: one INSERT ... SELECT of October''s calls (about 40 per customer)'
\timing on
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT c.customer_id,
	   CASE WHEN n % 10 = 0 THEN 'PSTN-INTL' ELSE 'PSTN-DOM' END,
	   format('user%s@%s', n % 9, c.customer_id),
	   '2026-10-01 00:00+00'::timestamptz
		 + ((hashtext(c.customer_id || n) & 2147483647) % 2678400) * interval '1 second',
	   30 + (hashtext(n || c.customer_id) & 2147483647) % 1500
  FROM overage.customer c
 CROSS JOIN generate_series(1, 40) n;
\echo '   and C-0007''s busy call centre: a 20-minute call every day at 10:00, one during the None window'
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT 'C-0007', 'PSTN-DOM', 'callcentre@C-0007', d + interval '10 hours', 1200
  FROM generate_series('2026-10-01 00:00+00'::timestamptz, '2026-10-31 00:00+00', interval '1 day') d
UNION ALL
SELECT 'C-0007', 'PSTN-DOM', 'callcentre@C-0007', '2026-10-16 00:02+00', 300;
\echo '   C-0010 has the same call centre, and a call starting at the very instant of the transfer'
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
SELECT 'C-0010', 'PSTN-DOM', 'callcentre@C-0010', d + interval '10 hours', 1200
  FROM generate_series('2026-10-01 00:00+00'::timestamptz, '2026-10-31 00:00+00', interval '1 day') d
UNION ALL
SELECT 'C-0010', 'PSTN-DOM', 'callcentre@C-0010', '2026-10-16 00:00+00', 300
UNION ALL
SELECT 'C-0010', 'PSTN-DOM', 'callcentre@C-0010', '2026-10-16 00:02+00', 300;
\timing off
SELECT count(*) AS calls, sum(duration_s) / 60 AS minutes FROM overage.usage;

\echo '== Live pool status of Tailspin Toys (Domestic Calling) during October'
SELECT t AS at, p.*
  FROM unnest(ARRAY['2026-10-02 00:00+00', '2026-10-10 00:00+00', '2026-10-20 00:00+00',
					'2026-10-31 23:59:59+00']::timestamptz[]) t,
	   LATERAL overage.pool_status('C-TAILSPIN', 'PSTN-DOM', t) p;
\echo '   and of C-0011 before and after its mid-month licences'
SELECT t AS at, p.*
  FROM unnest(ARRAY['2026-10-14 11:59+00', '2026-10-14 12:00+00']::timestamptz[]) t,
	   LATERAL overage.pool_status('C-0011', 'PSTN-DOM', t) p;

\echo '   Northwind right after its purchase: the 240 minutes it bought are all there.'
\echo '   Its calls before the purchase are overage (unassigned: nobody held it yet)'
\echo '   and never use up the allowance bought later (1.2; 1.1 subtracted them and showed 11.2 remaining)'
SELECT t AS at, p.*
  FROM unnest(ARRAY['2026-10-04 07:59+00', '2026-10-04 08:00+00']::timestamptz[]) t,
	   LATERAL overage.pool_status('C-NORTHWIND', 'PSTN-DOM', t) p;

\echo '== Live rating (1.2): rate what has arrived, as the background worker does every'
\echo '   overage.rate_interval seconds; the alerts it crosses are stored once and NOTIFYd'
\echo '   on overage_alert.  First a spending budget: Contoso warns Tailspin at 50, 80 and'
\echo '   100 % of 40.00 of overage a month (in the currency of Contoso''s charges to it):'
SELECT overage.set_budget('P-CONTOSO', 'C-TAILSPIN', 40.00, '{50,80,100}');
SELECT partner_id, customer_id, amount, currency, thresholds FROM overage.budget;
SELECT * FROM overage.rating_status();
SELECT overage.rate_pending() AS calls_rated;
SELECT * FROM overage.rating_status();
\echo '   the alerts raised (pool: 80 % and 100 % of a customer''s included minutes;'
\echo '   budget: Tailspin''s, crossed by the call at crossed_at)'
SELECT kind, threshold, count(*) AS alerts, min(crossed_at) AS first_crossed
  FROM overage.alert GROUP BY 1, 2 ORDER BY 1, 2;
SELECT kind, partner_id, customer_id, threshold, value, limit_value, crossed_at
  FROM overage.alert WHERE kind = 'budget' ORDER BY crossed_at;
\echo '   a late call (before what is rated) makes only its group stale; the next rating redoes it'
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
	VALUES ('C-TAILSPIN', 'PSTN-DOM', 'late@C-TAILSPIN', '2026-10-03 09:00+00', 120);
SELECT month, calls, rated_calls, stale_groups FROM overage.rating_status();
SELECT overage.rate_pending() AS calls_rated;

\echo '== Preview, then close October (the close writes the rated lines: no call is read)'
SELECT coalesce(partner_id, '(unassigned)') AS partner, count(*) AS lines,
	   sum(quantity) AS minutes, sum(amount) AS amount, currency
  FROM overage.preview_month('2026-10-01') GROUP BY 1, currency ORDER BY 1;
SELECT overage.close_month('2026-10-01') AS lines_written;
\echo '   a late call dated in October is refused now:'
SELECT demo.try($$INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)
					 VALUES ('C-TAILSPIN', 'PSTN-DOM', 'late', '2026-10-31 23:00+00', 60)$$) AS late_call;

\echo '== Tailspin Toys (market SE): the lines of its handoff month, split at the price change of Oct 15'
SELECT coalesce(partner_id, '(unassigned)') AS partner, service_id, overage_seconds, quantity, unit_price, amount
  FROM overage.charge WHERE customer_id = 'C-TAILSPIN' ORDER BY service_id, partner_id NULLS FIRST;

\echo '== C-0007: Domestic Calling overage split at its mid-month handoff (None between 00:00 and 00:10 on Oct 16)'
SELECT coalesce(partner_id, '(unassigned)') AS partner, service_id, overage_seconds, quantity, unit_price, amount
  FROM overage.charge WHERE customer_id = 'C-0007' ORDER BY service_id, partner_id NULLS FIRST;

\echo '== C-0010: the same move by transfer (Oct 16 00:00): no None period, no unassigned line;'
\echo '   Contoso''s and Fabrikam''s lines add up to the customer''s overage'
SELECT coalesce(partner_id, '(unassigned)') AS partner, service_id, overage_seconds, quantity, unit_price, amount
  FROM overage.charge WHERE customer_id = 'C-0010' ORDER BY service_id, partner_id NULLS FIRST;
SELECT c.customer_id, sum(ch.overage_seconds) AS billed_seconds,
	   (SELECT round(overage_minutes * 60) FROM overage.pool_status(c.customer_id, 'PSTN-DOM', '2026-10-31 23:59:59.999999+00')) AS overage_seconds,
	   (SELECT round(unassigned_minutes * 60) FROM overage.pool_status(c.customer_id, 'PSTN-DOM', '2026-10-31 23:59:59.999999+00')) AS unassigned_seconds
  FROM (VALUES ('C-0007'), ('C-0010')) c(customer_id)
  JOIN overage.charge ch ON ch.customer_id = c.customer_id AND ch.service_id = 'PSTN-DOM'
							AND ch.partner_id IS NOT NULL
 GROUP BY c.customer_id ORDER BY 1;
SELECT customer_id, coalesce(partner_id, 'None') AS holder, valid_from, valid_to
  FROM overage.holder_period
 WHERE customer_id IN ('C-0007', 'C-0010') AND service_id = 'PSTN-DOM' ORDER BY 1, valid_from;

\echo '== Each partner''s reconciliation file for October (first lines and totals)'
SELECT "PartnerId", "CustomerId", "CustomerName", "EntitlementDescription", "MeterName",
	   "Quantity", "UnitPrice", "BillingPreTaxTotal", "BillingCurrency", "ChargeType"
  FROM overage.reconciliation('P-CONTOSO', '2026-10-01') ORDER BY "CustomerId", "MeterName" LIMIT 8;
SELECT "PartnerId", "CustomerId", "CustomerName", "EntitlementDescription", "MeterName",
	   "Quantity", "UnitPrice", "BillingPreTaxTotal", "BillingCurrency", "ChargeType"
  FROM overage.reconciliation('P-FABRIKAM', '2026-10-01') ORDER BY "CustomerId", "MeterName" LIMIT 8;
SELECT p.partner_id, count(r.*) AS lines, sum(r."BillingPreTaxTotal") AS total
  FROM overage.partner p, LATERAL overage.reconciliation(p.partner_id, '2026-10-01') r
 GROUP BY 1 ORDER BY 1;

\set csv :out '/recon-P-CONTOSO-2026-10.csv'
COPY (SELECT * FROM overage.reconciliation('P-CONTOSO', '2026-10-01')) TO STDOUT (FORMAT csv, HEADER) \g :csv
\set csv2 :out '/recon-P-FABRIKAM-2026-10.csv'
COPY (SELECT * FROM overage.reconciliation('P-FABRIKAM', '2026-10-01')) TO STDOUT (FORMAT csv, HEADER) \g :csv2
\echo '== Reconciliation files written (what \\copy (select * from overage.reconciliation(...)) to FILE csv header writes):'
\echo :csv
\echo :csv2
\echo '   first lines of' :csv
\setenv CSV :csv
\! head -4 "$CSV"
