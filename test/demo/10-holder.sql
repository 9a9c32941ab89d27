-- The overage holder, step by step: purchase -> provisioning -> first-in ->
-- a second partner's purchase respected -> holder sets None -> the other
-- partner assigns -> holder's last licence cancelled -> automatic None ->
-- (1.2) Partner Center's JSON, and the three-party transfer: the overage
-- moves with no None period, beside the old None handoff.
SET timezone = 'UTC';
\pset footer off
CREATE EXTENSION overage;
CREATE SCHEMA demo;

-- a call that may fail, shown instead of stopping the walk-through
CREATE FUNCTION demo.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END $$;

-- who holds what, with names instead of ids
CREATE VIEW demo.holders AS
SELECT c.name AS customer, g.service_id AS service,
	   coalesce(p.name, 'None') AS holder, s.kind AS holder_subscription_kind,
	   g.since
  FROM overage.customer c
 CROSS JOIN LATERAL overage.get_overage(c.customer_id) g
  LEFT JOIN overage.partner p ON p.partner_id = g.partner_id
  LEFT JOIN overage.subscription s ON s.subscription_id = g.subscription_id
 ORDER BY 1, 2;

CREATE VIEW demo.audit AS
SELECT l.log_id, l.customer_id AS customer, l.service_id AS service,
	   coalesce(l.from_partner_id, 'None') AS "from",
	   coalesce(l.to_partner_id, 'None') AS "to",
	   l.at, l.by_role, l.reason
  FROM overage.assignment_log l ORDER BY l.log_id;

\echo
\echo '== The catalog: the Partner Center price list as downloaded (test/data/price_list_sample.csv)'
-- the sample inputs live in test/data (run-demo.sh copies them beside the demo)
\copy overage.price_list_import FROM '../data/price_list_sample.csv' (FORMAT csv, HEADER)
SELECT count(*) AS price_list_rows, count(DISTINCT ("ProductId", "SkuId")) AS skus,
	   string_agg(DISTINCT "Market", ' ') AS markets
  FROM overage.price_list_import;
\echo '   apply: one SKU per (ProductId, SkuId), title and Tags from the file'
SELECT * FROM overage.apply_price_list();
\echo '   applying the same file again changes nothing'
SELECT count(*) AS changes FROM overage.apply_price_list();
\echo '   the services and the minutes per licence are the operator''s (the price list has no minutes)'
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('PSTN-DOM', 'Domestic Calling', 0.0150),
	('PSTN-INTL', 'International Calling', 0.1200);
INSERT INTO overage.sku_service VALUES
	('CFQ7TTC0LF8Q', '0002', 'PSTN-DOM', 120),
	('CFQ7TTC0LF8Q', '0002', 'PSTN-INTL', 0),
	('CFQ7TTC0LFLX', '0001', 'PSTN-DOM', 120);
SELECT product_id, sku_id, title, tags, includes_overage FROM overage.sku ORDER BY product_id, sku_id;
SELECT overage.sku_properties(product_id, sku_id) AS "SKU properties (catalog API)"
  FROM overage.sku WHERE product_id IN ('CFQ7TTC0LF8Q', 'CFQ7TTC0LFLX', 'CFQ7TTC0LH18')
   AND sku_id IN ('0001', '0002') ORDER BY product_id, sku_id;

\echo '== Partners and customers'
INSERT INTO overage.partner VALUES
	('P-CONTOSO', 'Contoso Telecom'), ('P-FABRIKAM', 'Fabrikam Networks'),
	('P-NORTHWIND', 'Northwind Traders');
INSERT INTO overage.customer VALUES
	('C-TAILSPIN', 'Tailspin Toys', 'SE'), ('C-WINGTIP', 'Wingtip Toys', 'NO');
SELECT * FROM overage.partner ORDER BY 1;
SELECT * FROM overage.customer ORDER BY 1;

\echo '== 1. Contoso buys 25 x E5 with Calling Plan for Tailspin (an overage SKU)'
SELECT overage.purchase('P-CONTOSO', 'C-TAILSPIN', 'CFQ7TTC0LF8Q', '0002', 25,
						'2026-10-01 08:00+00') AS contoso_e5 \gset
\echo '   provisioning: an Azure plan, its default Azure subscription, an overage subscription'
SELECT partner_id, kind, quantity, status, created_at
  FROM overage.subscription WHERE customer_id = 'C-TAILSPIN' ORDER BY partner_id, created_at, kind;
\echo '   first-in: Contoso now holds the overage of each service of the SKU'
SELECT * FROM demo.holders;

\echo '== 2. Contoso buys 5 more: no second Azure plan, nothing changes hands'
SELECT overage.purchase('P-CONTOSO', 'C-TAILSPIN', 'CFQ7TTC0LF8Q', '0002', 5,
						'2026-10-03 10:00+00') IS NOT NULL AS bought;
SELECT partner_id, kind, count(*) FROM overage.subscription
 WHERE customer_id = 'C-TAILSPIN' GROUP BY 1, 2 ORDER BY 1, 2;

\echo '== 3. Fabrikam buys 10 x the same SKU for Tailspin: the first partner is respected'
SELECT overage.purchase('P-FABRIKAM', 'C-TAILSPIN', 'CFQ7TTC0LF8Q', '0002', 10,
						'2026-10-05 09:00+00') AS fabrikam_e5 \gset
SELECT * FROM demo.holders;
\echo '   Fabrikam cannot take it while Contoso holds it:'
SELECT demo.try(format(
	$$SELECT overage.assign_overage('P-FABRIKAM', 'C-TAILSPIN', 'PSTN-DOM', %L, '2026-10-06 09:00+00')$$,
	(SELECT subscription_id FROM overage.subscription
	  WHERE partner_id = 'P-FABRIKAM' AND customer_id = 'C-TAILSPIN' AND kind = 'overage'))) AS fabrikam_assign;
\echo '   and cannot set it to None either:'
SELECT demo.try($$SELECT overage.release_overage('P-FABRIKAM', 'C-TAILSPIN', 'PSTN-DOM', '2026-10-06 09:05+00')$$) AS fabrikam_release;

\echo '== 4. Northwind buys E3 with Domestic Calling (minutes, no overage) for Wingtip: nothing provisioned'
SELECT overage.purchase('P-NORTHWIND', 'C-WINGTIP', 'CFQ7TTC0LFLX', '0001', 40,
						'2026-10-06 12:00+00') IS NOT NULL AS bought;
SELECT partner_id, kind, quantity FROM overage.subscription WHERE customer_id = 'C-WINGTIP';
SELECT count(*) AS wingtip_overage_rows FROM overage.get_overage('C-WINGTIP');

\echo '== 5. The three parties agree: Contoso sets Domestic Calling overage to None'
SELECT overage.release_overage('P-CONTOSO', 'C-TAILSPIN', 'PSTN-DOM', '2026-10-15 12:00+00');
SELECT * FROM demo.holders;

\echo '== 6. Now Fabrikam assigns it to its overage subscription'
SELECT overage.assign_overage('P-FABRIKAM', 'C-TAILSPIN', 'PSTN-DOM', subscription_id,
							  '2026-10-15 12:30+00')
  FROM overage.subscription
 WHERE partner_id = 'P-FABRIKAM' AND customer_id = 'C-TAILSPIN' AND kind = 'overage';
SELECT * FROM demo.holders;

\echo '== 7. Fabrikam moves it to its default Azure subscription (its own, allowed)'
SELECT overage.assign_overage('P-FABRIKAM', 'C-TAILSPIN', 'PSTN-DOM', subscription_id,
							  '2026-10-20 08:00+00')
  FROM overage.subscription
 WHERE partner_id = 'P-FABRIKAM' AND customer_id = 'C-TAILSPIN' AND kind = 'azure_subscription';
SELECT * FROM demo.holders;

\echo '== 8. Fabrikam cancels its only E5 licence for Tailspin: automatic None'
SELECT overage.cancel(:'fabrikam_e5', '2026-10-25 17:00+00');
SELECT * FROM demo.holders;
\echo '   a purchase never re-enables None (Fabrikam buys again):'
SELECT overage.purchase('P-FABRIKAM', 'C-TAILSPIN', 'CFQ7TTC0LF8Q', '0002', 2,
						'2026-10-26 09:00+00') IS NOT NULL AS bought;
SELECT * FROM demo.holders;

\echo '== 9. Partner Center fidelity: both spellings of the tag; the GET as Partner Center''s JSON'
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('CFQ7TTC0LF8S', '0001', 'Microsoft Teams Phone with Calling Plan', 'Telco;IncludesOverage');
SELECT product_id, tags, includes_overage,
	   overage.sku_properties(product_id, sku_id) ->> 'consumptionType' AS "consumptionType"
  FROM overage.sku ORDER BY product_id;
SELECT jsonb_pretty(overage.get_overage_resource('C-TAILSPIN')) AS "GET /customers/C-TAILSPIN/overage";

\echo '== 10. The three-party transfer: Contoso, Fabrikam and Tailspin agree to move'
\echo '   International Calling from Contoso to Fabrikam, with no unbilled gap'
\echo '   (beside the old None handoff of Domestic Calling in steps 5 and 6)'
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_tailspin_admin') THEN
		CREATE ROLE demo_tailspin_admin;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_contoso_admin') THEN
		CREATE ROLE demo_contoso_admin;
	END IF;
END $$;
SELECT overage.add_agent('demo_tailspin_admin', NULL, 'customer_admin', 'C-TAILSPIN');
SELECT overage.add_agent('demo_contoso_admin', 'P-CONTOSO', 'global_admin');
\echo '   Fabrikam asks (Oct 27, 09:00); it expires after 7 days'
SELECT overage.request_transfer('P-FABRIKAM', 'C-TAILSPIN', 'PSTN-INTL', subscription_id,
								'2026-10-27 09:00+00') AS transfer_id
  FROM overage.subscription
 WHERE partner_id = 'P-FABRIKAM' AND customer_id = 'C-TAILSPIN' AND kind = 'overage' \gset
\echo '   Contoso''s global admin consents (Oct 27, 12:00): still pending, Contoso still holds it'
SET ROLE demo_contoso_admin;
SELECT overage.consent_transfer(:'transfer_id', 'holder', '2026-10-27 12:00+00') AS status;
RESET ROLE;
SELECT * FROM demo.holders WHERE service = 'PSTN-INTL';
\echo '   Tailspin''s customer admin consents (Oct 28, 09:00): the holder moves at that instant'
SET ROLE demo_tailspin_admin;
SELECT overage.consent_transfer(:'transfer_id', 'customer', '2026-10-28 09:00+00') AS status;
SELECT service_id, partner_id, since FROM overage.get_overage('C-TAILSPIN');
RESET ROLE;
SELECT to_partner_id, status, requested_at, holder_consent_at, holder_consent_by,
	   customer_consent_at, customer_consent_by, expires_at, closed_at
  FROM overage.transfer;
\echo '   Side by side: the None handoff (PSTN-DOM) has a None period, the transfer (PSTN-INTL) none'
SELECT service_id, coalesce(partner_id, 'None') AS holder, valid_from, valid_to
  FROM overage.holder_period
 WHERE customer_id = 'C-TAILSPIN' AND valid_from >= '2026-10-15' OR
	   customer_id = 'C-TAILSPIN' AND service_id = 'PSTN-INTL'
 ORDER BY service_id, valid_from;
\echo '   Contoso cannot take it back outside a transfer:'
SELECT demo.try(format(
	$$SELECT overage.assign_overage('P-CONTOSO', 'C-TAILSPIN', 'PSTN-INTL', %L, '2026-10-29 09:00+00')$$,
	(SELECT subscription_id FROM overage.subscription
	  WHERE partner_id = 'P-CONTOSO' AND customer_id = 'C-TAILSPIN' AND kind = 'overage'))) AS contoso_assign;

\echo '== The audit log (overage.assignment_log)'
SELECT * FROM demo.audit;
\echo '== The holder history (overage.holder_period): no overlaps, None periods included'
SELECT customer_id, service_id, coalesce(partner_id, 'None') AS holder, valid_from, valid_to
  FROM overage.holder_period ORDER BY customer_id, service_id, valid_from;
\echo '== Licence quantities over time (overage.license_quantity)'
SELECT s.partner_id, s.product_id, q.quantity, q.valid_from, q.valid_to
  FROM overage.license_quantity q JOIN overage.subscription s USING (subscription_id)
 ORDER BY s.partner_id, q.valid_from;
